#include "trading_heal/diagnoser/journal.hpp"

#include <systemd/sd-journal.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <memory>

#include "trading_heal/proto/codec.hpp"

namespace trading_heal::diagnoser {
namespace {

constexpr std::size_t kMaxLineBytes = 2000;

std::string field(sd_journal* j, const char* name) {
  const void* data = nullptr;
  std::size_t len = 0;
  if (sd_journal_get_data(j, name, &data, &len) < 0) return {};
  const std::size_t prefix = std::strlen(name) + 1;  // "NAME="
  if (len < prefix) return {};
  return std::string(static_cast<const char*>(data) + prefix, len - prefix);
}

std::string errno_text(const char* what, int r) {
  return std::string(what) + ": " + std::strerror(-r);
}

}  // namespace

std::vector<std::vector<std::string>> journal_matches(const std::string& unit,
                                                      common::SystemdScope scope) {
  if (scope == common::SystemdScope::kUser) {
    return {{"_SYSTEMD_USER_UNIT=" + unit},
            {"USER_UNIT=" + unit, "_COMM=systemd"},
            {"_SYSTEMD_UNIT=" + unit}};
  }
  return {{"_SYSTEMD_UNIT=" + unit}, {"UNIT=" + unit, "_PID=1"}};
}

std::string format_entry(std::uint64_t realtime_usec, const std::string& ident, long pid,
                         const std::string& message) {
  const std::time_t secs = static_cast<std::time_t>(realtime_usec / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[32];
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::string line = std::string(ts) + " " + (ident.empty() ? "?" : ident);
  if (pid > 0) line += "[" + std::to_string(pid) + "]";
  line += ": ";
  line += message.size() > kMaxLineBytes ? message.substr(0, kMaxLineBytes) : message;
  return proto::sanitize_utf8(line);
}

tl::expected<std::vector<std::string>, std::string> read_unit_journal(const std::string& unit,
                                                                      common::SystemdScope scope,
                                                                      std::size_t n) {
  sd_journal* raw = nullptr;
  if (int r = sd_journal_open(&raw, SD_JOURNAL_LOCAL_ONLY); r < 0) {
    return tl::unexpected(errno_text("sd_journal_open", r));
  }
  std::unique_ptr<sd_journal, decltype(&sd_journal_close)> j(raw, &sd_journal_close);
  // Messages can be long (tracebacks); the cap keeps one entry from costing much.
  sd_journal_set_data_threshold(j.get(), 4096);
  bool first = true;
  for (const auto& group : journal_matches(unit, scope)) {
    if (!first) sd_journal_add_disjunction(j.get());
    first = false;
    for (const auto& m : group) {  // different fields within a group: all must hold
      if (int r = sd_journal_add_match(j.get(), m.data(), m.size()); r < 0) {
        return tl::unexpected(errno_text("sd_journal_add_match", r));
      }
    }
  }
  if (int r = sd_journal_seek_tail(j.get()); r < 0) {
    return tl::unexpected(errno_text("sd_journal_seek_tail", r));
  }
  std::vector<std::string> lines;
  while (lines.size() < n) {
    const int r = sd_journal_previous(j.get());
    if (r < 0) return tl::unexpected(errno_text("sd_journal_previous", r));
    if (r == 0) break;
    std::uint64_t usec = 0;
    sd_journal_get_realtime_usec(j.get(), &usec);
    std::string ident = field(j.get(), "SYSLOG_IDENTIFIER");
    const std::string pid = field(j.get(), "_PID");
    long p = pid.empty() ? 0 : std::strtol(pid.c_str(), nullptr, 10);
    lines.push_back(format_entry(usec, ident, p, field(j.get(), "MESSAGE")));
  }
  std::reverse(lines.begin(), lines.end());
  return lines;
}

}  // namespace trading_heal::diagnoser
