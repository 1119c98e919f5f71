// Reading /proc/PID/{stat,cmdline} under a configurable root.
#include <fcntl.h>
#include <unistd.h>

#include "trading_heal/probe/proc.hpp"

namespace trading_heal::probe {
namespace {

// Reads a small file in one go; nullopt when it cannot be opened (process gone).
std::optional<std::string> slurp(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > std::size_t{64} * 1024) break;  // cmdlines can be long; we need the start only
  }
  ::close(fd);
  return out;
}

}  // namespace

ProcReader::ProcReader(std::string root)
    : root_(std::move(root)), page_size_(::sysconf(_SC_PAGESIZE)), hz_(::sysconf(_SC_CLK_TCK)) {}

ProcSample ProcReader::read(pid_t pid, bool want_cmdline) const {
  ProcSample s;
  const std::string dir = root_ + "/" + std::to_string(pid);
  const auto text = slurp(dir + "/stat");
  if (!text) return s;
  const auto st = parse_proc_stat(*text);
  if (!st) return s;
  s.exists = true;
  s.zombie = st->state == 'Z' || st->state == 'X';
  s.rss_bytes = st->rss_pages * static_cast<std::uint64_t>(page_size_);
  s.cpu_ticks = st->cpu_ticks;
  s.start_ticks = st->start_ticks;
  if (want_cmdline) s.cmdline = join_cmdline(slurp(dir + "/cmdline").value_or(""));
  return s;
}

}  // namespace trading_heal::probe
