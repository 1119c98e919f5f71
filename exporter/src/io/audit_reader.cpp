#include "trading_heal/exporter/audit_reader.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "trading_heal/exporter/audit_format.hpp"

namespace trading_heal::exporter {

std::string query_audit(const std::vector<Fd>& files_newest_first, const AuditQuery& q,
                        std::uint64_t* stopped_after, std::uint64_t max_scan) {
  AuditCollector collector(q, max_scan);
  for (const Fd& f : files_newest_first) {
    read_lines_backwards(f.get(),
                         [&](std::string_view line) { return collector.feed_newest_first(line); });
    if (collector.full()) break;
  }
  if (stopped_after != nullptr) *stopped_after = collector.scan_stopped() ? collector.scanned() : 0;
  return collector.json_array();
}

int verify_audit_files(const std::vector<std::string>& paths, std::ostream& out) {
  std::optional<std::string> expected;
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    const std::string& path = paths[i];
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      out << "cannot open " << path << ": " << std::strerror(errno) << "\n";
      return 2;
    }
    struct stat st {};
    const bool torn = ::fstat(fd.get(), &st) == 0 && st.st_size > 0 && [&] {
      char c = 0;
      return ::pread(fd.get(), &c, 1, st.st_size - 1) == 1 && c != '\n';
    }();
    ChainVerifier v(expected);
    read_lines_forwards(fd.get(), [&](std::string_view line) { return v.feed(line); });
    total += v.lines();
    if (v.broken()) {
      out << "BROKEN " << path << ":" << v.broken_line() << ": " << v.error() << "\n";
      return 1;
    }
    out << "ok " << path << " lines=" << v.lines() << (torn ? " (torn last line ignored)" : "")
        << "\n";
    if (v.lines() > 0) expected = v.last_hash();
  }
  out << "chain intact: " << total << " lines in " << paths.size() << " file(s)"
      << (expected ? ", last hash " + *expected : std::string()) << "\n";
  return 0;
}

}  // namespace trading_heal::exporter
