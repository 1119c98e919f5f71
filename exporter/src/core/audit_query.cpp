#include "trading_heal/exporter/audit_query.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "trading_heal/exporter/audit_format.hpp"

namespace trading_heal::exporter {
namespace {

bool all_of_charset(const std::string& s, std::string_view extra) {
  for (char c : s) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && extra.find(c) == std::string_view::npos) return false;
  }
  return true;
}

std::optional<double> parse_time(const std::string& v) {
  if (auto t = parse_iso8601_utc(v)) return t;
  char* end = nullptr;
  errno = 0;
  double d = std::strtod(v.c_str(), &end);
  if (errno != 0 || end == v.c_str() || *end != '\0' || !std::isfinite(d) || d < 0 ||
      d > 253402300799.0) {
    return std::nullopt;
  }
  return d;
}

}  // namespace

tl::expected<AuditQuery, ParamError> parse_audit_query(const QueryParams& params) {
  AuditQuery q;
  for (auto it = params.begin(); it != params.end(); ++it) {
    const auto& [name, value] = *it;
    if (params.count(name) > 1) return tl::unexpected(ParamError{name, name + " given twice"});
    if (value.empty()) return tl::unexpected(ParamError{name, name + " is empty"});
    if (name == "symbol") {
      if (value.size() > 64 || !all_of_charset(value, "-_.")) {
        return tl::unexpected(ParamError{name, "symbol must be like BTC-USDT"});
      }
      q.symbol = value;
    } else if (name == "action") {
      if (value.size() > 64 || !all_of_charset(value, "_")) {
        return tl::unexpected(ParamError{name, "action must be like restart or rate_limited"});
      }
      q.action = value;
    } else if (name == "agent") {
      if (value.size() > 128 || !all_of_charset(value, "_")) {
        return tl::unexpected(ParamError{name, "agent must be an instance like BTC_USDT"});
      }
      q.agent = value;
    } else if (name == "since" || name == "until") {
      auto t = parse_time(value);
      if (!t) {
        return tl::unexpected(ParamError{
            name, name + " must be ISO 8601 UTC (2026-07-16T15:40:11Z) or epoch seconds"});
      }
      (name == "since" ? q.since : q.until) = t;
    } else if (name == "limit") {
      char* end = nullptr;
      errno = 0;
      long long n = std::strtoll(value.c_str(), &end, 10);
      if (errno != 0 || *end != '\0' || n < 1 || n > static_cast<long long>(kMaxAuditLimit)) {
        return tl::unexpected(ParamError{
            name, "limit must be an integer from 1 to " + std::to_string(kMaxAuditLimit)});
      }
      q.limit = static_cast<std::size_t>(n);
    } else {
      return tl::unexpected(
          ParamError{name.size() > 64 ? name.substr(0, 64) : name,
                     "unknown parameter (known: symbol, action, agent, since, until, limit)"});
    }
  }
  if (q.since && q.until && *q.until <= *q.since) {
    return tl::unexpected(ParamError{"until", "until must be after since"});
  }
  if (q.since) q.since_ts = iso8601_utc(*q.since);
  if (q.until) q.until_ts = iso8601_utc(*q.until);
  // The values are restricted to characters JSON never escapes, so the serialized key-value
  // pair is an exact, unambiguous needle.
  if (q.symbol) q.needles.push_back(R"("symbol":")" + *q.symbol + '"');
  if (q.action) q.needles.push_back(R"("action":")" + *q.action + '"');
  if (q.agent) q.needles.push_back(R"("agent":")" + *q.agent + '"');
  return q;
}

bool matches(const AuditQuery& q, std::string_view line) {
  // memmem (glibc's two-way search) rather than string_view::find, which stops at every '"'
  // of the JSON line (the needles start with one).
  for (const auto& n : q.needles) {
    if (::memmem(line.data(), line.size(), n.data(), n.size()) == nullptr) return false;
  }
  if (!q.since_ts.empty() || !q.until_ts.empty()) {
    // Same fixed-width format on both sides: string order is time order.
    std::string_view ts = line_ts(line);
    if (ts.empty()) return false;
    if (!q.since_ts.empty() && ts < q.since_ts) return false;
    if (!q.until_ts.empty() && ts >= q.until_ts) return false;
  }
  return true;
}

bool AuditCollector::feed_newest_first(std::string_view line) {
  if (full()) return false;
  ++scanned_;
  // Only whole objects are spliced into the answer (a hand-edited file must not break it).
  if (line.size() >= 2 && line.front() == '{' && line.back() == '}' && matches(q_, line)) {
    lines_.emplace_back(line);
  }
  return !full();
}

std::string AuditCollector::json_array() const {
  std::size_t total = 2;
  for (const auto& l : lines_) total += l.size() + 2;
  std::string out;
  out.reserve(total);
  out += '[';
  for (auto it = lines_.rbegin(); it != lines_.rend(); ++it) {
    if (it != lines_.rbegin()) out += ",\n";
    out += *it;
  }
  out += "]\n";
  return out;
}

}  // namespace trading_heal::exporter
