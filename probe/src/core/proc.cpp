// /proc parsing and reading.
#include "trading_heal/probe/proc.hpp"

#include <charconv>
#include <vector>

namespace trading_heal::probe {

std::optional<ProcStat> parse_proc_stat(std::string_view text) {
  const auto close = text.rfind(')');
  if (close == std::string_view::npos || close + 2 >= text.size()) return std::nullopt;
  std::string_view rest = text.substr(close + 2);
  // Fields after comm, 1-based from field 3 (state).
  std::vector<std::string_view> f;
  f.reserve(24);
  while (!rest.empty() && f.size() < 24) {
    const auto sp = rest.find(' ');
    f.push_back(rest.substr(0, sp));
    if (sp == std::string_view::npos) break;
    rest.remove_prefix(sp + 1);
  }
  if (f.size() < 22 || f[0].size() != 1) return std::nullopt;
  auto num = [&](std::size_t field, std::uint64_t& out) {
    const auto s = f[field - 3];
    return std::from_chars(s.data(), s.data() + s.size(), out).ec == std::errc{};
  };
  ProcStat st;
  st.state = f[0][0];
  std::uint64_t utime = 0, stime = 0;
  if (!num(14, utime) || !num(15, stime) || !num(22, st.start_ticks) || !num(24, st.rss_pages)) {
    return std::nullopt;
  }
  st.cpu_ticks = utime + stime;
  return st;
}

std::string join_cmdline(std::string_view raw) {
  while (!raw.empty() && raw.back() == '\0') raw.remove_suffix(1);
  std::string out(raw);
  for (char& c : out) {
    if (c == '\0') c = ' ';
  }
  return out;
}

double CpuTracker::update(const std::string& agent, const ProcSample& s, double mono_s) {
  if (!s.exists) {
    last_.erase(agent);
    return 0;
  }
  auto it = last_.find(agent);
  if (it == last_.end() || it->second.start_ticks != s.start_ticks) {
    last_[agent] = Last{s.start_ticks, s.cpu_ticks, mono_s, 0};
    return 0;
  }
  Last& l = it->second;
  const double dt = mono_s - l.mono_s;
  // Instant re-checks between cycles come too soon for a meaningful ratio: keep the last one.
  if (dt < 0.5 || hz_ <= 0 || s.cpu_ticks < l.cpu_ticks) return l.ratio;
  l.ratio = static_cast<double>(s.cpu_ticks - l.cpu_ticks) / static_cast<double>(hz_) / dt;
  l.cpu_ticks = s.cpu_ticks;
  l.mono_s = mono_s;
  return l.ratio;
}

ProcessPattern::ProcessPattern(const std::string& pattern) {
  if (!pattern.empty()) re_.emplace(pattern, std::regex::extended | std::regex::optimize);
}

bool ProcessPattern::matches(const std::string& cmdline) const {
  return !re_ || std::regex_search(cmdline, *re_);
}

}  // namespace trading_heal::probe
