// /proc facts about a process: pure parsers (tested on fixture text) and a reader with a
// configurable root (tests point it at a fixture tree, like node_exporter's --path.procfs).
// ProcReader and CpuTracker are not thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <string_view>

namespace trading_heal::probe {

struct ProcStat {
  char state = '?';               // R S D Z T ...
  std::uint64_t cpu_ticks = 0;    // utime + stime, in clock ticks
  std::uint64_t start_ticks = 0;  // starttime: tells a reused PID apart
  std::uint64_t rss_pages = 0;
};

// Parses the text of /proc/PID/stat (the comm field may hold spaces and parentheses).
std::optional<ProcStat> parse_proc_stat(std::string_view text);
// /proc/PID/cmdline: NUL-separated args -> joined by ' ' (what `pgrep -f` matches).
std::string join_cmdline(std::string_view raw);

struct ProcSample {
  bool exists = false;
  bool zombie = false;
  std::uint64_t rss_bytes = 0;
  std::uint64_t cpu_ticks = 0;
  std::uint64_t start_ticks = 0;
  std::string cmdline;  // only read when asked
};

class ProcReader {
 public:
  explicit ProcReader(std::string root = "/proc");
  ProcSample read(pid_t pid, bool want_cmdline) const;
  long ticks_per_second() const { return hz_; }

 private:
  std::string root_;
  long page_size_;
  long hz_;
};

// CPU ratio (CPU seconds per wall second) from successive samples of one agent's process.
class CpuTracker {
 public:
  // `ticks_per_second`: the unit of the samples' CPU ticks (sysconf(_SC_CLK_TCK)).
  explicit CpuTracker(long ticks_per_second) : hz_(ticks_per_second) {}
  // `mono_s`: monotonic seconds of the sample. Returns 0 for the first sample of a process.
  double update(const std::string& agent, const ProcSample& s, double mono_s);

 private:
  long hz_;
  struct Last {
    std::uint64_t start_ticks;
    std::uint64_t cpu_ticks;
    double mono_s;
    double ratio;
  };
  std::map<std::string, Last> last_;
};

// A compiled process pattern (POSIX extended regex searched in the joined cmdline).
class ProcessPattern {
 public:
  explicit ProcessPattern(const std::string& pattern);
  bool empty() const { return !re_; }
  bool matches(const std::string& cmdline) const;

 private:
  std::optional<std::regex> re_;
};

}  // namespace trading_heal::probe
