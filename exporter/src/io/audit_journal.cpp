#include "trading_heal/exporter/audit_journal.hpp"

#include <fcntl.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "trading_heal/exporter/audit_format.hpp"
#include "trading_heal/exporter/audit_log.hpp"
#include "trading_heal/exporter/audit_reader.hpp"
#include "trading_heal/exporter/sha256.hpp"

namespace trading_heal::exporter {
namespace {

std::string canonical(const std::string& path) {
  std::error_code ec;
  auto p = std::filesystem::weakly_canonical(path, ec);
  return ec ? path : p.string();
}

struct JournalCloser {
  void operator()(sd_journal* j) const { sd_journal_close(j); }
};

// The value of FIELD in the current entry, "" when absent.
std::string field(sd_journal* j, const char* name) {
  const void* data = nullptr;
  size_t len = 0;
  if (sd_journal_get_data(j, name, &data, &len) < 0) return "";
  std::string s(static_cast<const char*>(data), len);
  const auto eq = s.find('=');
  return eq == std::string::npos ? "" : s.substr(eq + 1);
}

std::string when(sd_journal* j) {
  std::uint64_t us = 0;
  if (sd_journal_get_realtime_usec(j, &us) < 0) return "?";
  const std::time_t t = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

bool record_audit_head(const std::string& path, const std::string& hash, const std::string& event) {
  const std::string file = canonical(path);
  return sd_journal_send("MESSAGE=audit head %s of %s (%s)", hash.c_str(), file.c_str(),
                         event.c_str(), "PRIORITY=6", "TRADING_HEAL_AUDIT_HEAD=%s", hash.c_str(),
                         "TRADING_HEAL_AUDIT_FILE=%s", file.c_str(), "TRADING_HEAL_AUDIT_EVENT=%s",
                         event.c_str(), nullptr) >= 0;
}

tl::expected<std::vector<RecordedHead>, std::string> read_recorded_heads(const std::string& path) {
  sd_journal* raw = nullptr;
  if (int r = sd_journal_open(&raw, SD_JOURNAL_LOCAL_ONLY); r < 0) {
    return tl::unexpected(std::string("cannot open the journal: ") + std::strerror(-r));
  }
  std::unique_ptr<sd_journal, JournalCloser> j(raw);
  const std::string match = "TRADING_HEAL_AUDIT_FILE=" + canonical(path);
  if (int r = sd_journal_add_match(j.get(), match.data(), match.size()); r < 0) {
    return tl::unexpected(std::string("journal match: ") + std::strerror(-r));
  }
  std::vector<RecordedHead> out;
  sd_journal_seek_tail(j.get());
  while (sd_journal_previous(j.get()) > 0) {
    RecordedHead h;
    h.hash = field(j.get(), "TRADING_HEAL_AUDIT_HEAD");
    h.event = field(j.get(), "TRADING_HEAL_AUDIT_EVENT");
    h.unit = field(j.get(), "_SYSTEMD_UNIT");
    if (h.unit.empty()) h.unit = field(j.get(), "_SYSTEMD_USER_UNIT");
    h.when = when(j.get());
    if (!h.hash.empty()) out.push_back(std::move(h));
  }
  return out;
}

int verify_audit_against_journal(const std::vector<std::string>& paths, std::ostream& out) {
  if (int rc = verify_audit_files(paths, out); rc != 0) return rc;
  // Every line's hash, and where the files' history starts.
  std::unordered_set<std::string> hashes;
  std::string boundary;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    Fd fd(::open(paths[i].c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      out << "cannot open " << paths[i] << ": " << std::strerror(errno) << "\n";
      return 2;
    }
    read_lines_forwards(fd.get(), [&](std::string_view line) {
      if (boundary.empty()) {  // the chain checked above: the first line has its prev_hash
        const auto j = nlohmann::json::parse(line, nullptr, false);
        boundary = j.is_object() ? j.value("prev_hash", kGenesisHash) : kGenesisHash;
      }
      hashes.insert(sha256_hex(line));
      return true;
    });
  }
  if (boundary.empty()) boundary = kGenesisHash;
  auto heads = read_recorded_heads(paths.back());
  if (!heads) {
    out << heads.error() << "\n";
    return 2;
  }
  const HeadCheck c = check_recorded_heads(*heads, hashes, boundary);
  for (const auto& m : c.missing) {
    out << "CUT BACK " << paths.back() << ": the journal recorded the head " << m.hash << " at "
        << m.when << " (" << m.event << ", " << m.unit << "); no line of the files has it\n";
  }
  if (!c.ok()) return 1;
  if (c.checked == 0 && !c.reached_rotated) {
    out << "no audit head recorded in the journal for " << canonical(paths.back())
        << (c.ignored > 0
                ? " by an exporter unit (" + std::to_string(c.ignored) + " other entries ignored)"
                : std::string())
        << ": nothing to compare with\n";
    return 1;
  }
  out << "journal: " << c.checked << " recorded head(s) found in the files"
      << (c.ignored > 0
              ? ", " + std::to_string(c.ignored) + " entries not from an exporter unit ignored"
              : std::string())
      << "\n";
  return 0;
}

}  // namespace trading_heal::exporter
