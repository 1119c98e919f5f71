#include "trading_heal/exporter/audit_format.hpp"

#include <cmath>
#include <cstdio>
#include <ctime>
#include <set>

#include <nlohmann/json.hpp>

#include "trading_heal/exporter/sha256.hpp"

namespace trading_heal::exporter {
namespace {

using ojson = nlohmann::ordered_json;

const std::set<std::string, std::less<>> kFixedKeys = {
    "ts",     "action", "symbol",    "agent",  "host",    "profile", "success",
    "detail", "reason", "diagnosis", "source", "boot_id", "seq",     "prev_hash"};

bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

ojson value_json(const proto::Value& v) {
  return std::visit([](const auto& x) { return ojson(x); }, v);
}

}  // namespace

std::string iso8601_utc(double epoch_seconds) {
  if (!std::isfinite(epoch_seconds)) epoch_seconds = 0;
  auto ms_total = static_cast<long long>(std::llround(epoch_seconds * 1000.0));
  long long secs = ms_total / 1000;
  long long ms = ms_total % 1000;
  if (ms < 0) {
    ms += 1000;
    secs -= 1;
  }
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[96];  // generous: the compiler cannot prove tm's fields are small
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return buf;
}

std::optional<double> parse_iso8601_utc(std::string_view s) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
  if (s.size() < 20 || !digits(s, 0, 4, y) || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != ' ') || !digits(s, 11, 2, h) ||
      s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' || !digits(s, 17, 2, se)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return std::nullopt;
  std::size_t pos = 19;
  double frac = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    double scale = 0.1;
    std::size_t start = pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9' && pos - start < 9) {
      frac += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return std::nullopt;
  }
  std::string_view zone = s.substr(pos);
  if (zone != "Z" && zone != "+00:00") return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = se;
  const std::time_t t = ::timegm(&tm);
  return static_cast<double>(t) + frac;
}

std::string format_audit_line(const proto::Message& msg, const std::string& prev_hash,
                              const std::string& host) {
  const auto& e = std::get<proto::Event>(msg.body);
  ojson j;
  j["ts"] = iso8601_utc(msg.env.ts);
  j["action"] = e.action;
  j["symbol"] = e.symbol;
  j["agent"] = e.agent;
  if (!host.empty()) j["host"] = host;
  if (!e.profile.empty() && e.profile != "default") j["profile"] = e.profile;
  j["success"] = e.success;
  j["detail"] = e.detail;
  j["reason"] = e.reason;
  if (e.diagnosis) j["diagnosis"] = *e.diagnosis;
  for (const auto& [name, value] : e.fields) {
    std::string key = kFixedKeys.count(name) != 0 ? "field_" + name : name;
    if (!j.contains(key)) j[key] = value_json(value);
  }
  j["source"] = msg.env.source;
  j["boot_id"] = msg.env.boot_id;
  j["seq"] = msg.env.seq;
  j["prev_hash"] = prev_hash;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string_view line_ts(std::string_view line) {
  constexpr std::string_view kPrefix = R"({"ts":")";
  if (line.substr(0, kPrefix.size()) != kPrefix) return {};
  auto end = line.find('"', kPrefix.size());
  if (end == std::string_view::npos) return {};
  return line.substr(kPrefix.size(), end - kPrefix.size());
}

std::optional<LineIdentity> line_identity(std::string_view line) {
  // Fast path: the last keys are written by us in a fixed order without spaces; the marker
  // `,"source":"` cannot occur inside a JSON string (its quotes would be escaped).
  constexpr std::string_view kSource = R"(,"source":")";
  constexpr std::string_view kBoot = R"(","boot_id":")";
  constexpr std::string_view kSeq = R"(","seq":)";
  auto s = line.rfind(kSource);
  if (s != std::string_view::npos) {
    auto b = line.find(kBoot, s + kSource.size());
    auto q = b == std::string_view::npos ? b : line.find(kSeq, b + kBoot.size());
    if (q != std::string_view::npos) {
      LineIdentity id;
      id.source = std::string(line.substr(s + kSource.size(), b - s - kSource.size()));
      id.boot_id = std::string(line.substr(b + kBoot.size(), q - b - kBoot.size()));
      std::size_t p = q + kSeq.size();
      bool any = false;
      while (p < line.size() && line[p] >= '0' && line[p] <= '9') {
        id.seq = id.seq * 10 + static_cast<std::uint64_t>(line[p] - '0');
        ++p;
        any = true;
      }
      // The host key, before the fields (`,"host":"` outside a string is the key itself).
      constexpr std::string_view kHost = R"(,"host":")";
      if (auto h = line.substr(0, s).find(kHost); h != std::string_view::npos) {
        const auto start = h + kHost.size();
        const auto end = line.find('"', start);
        if (end != std::string_view::npos) id.host = std::string(line.substr(start, end - start));
      }
      // Escapes in source, boot id or host: leave them to the full parse.
      if (any && id.source.find('\\') == std::string::npos &&
          id.boot_id.find('\\') == std::string::npos && id.host.find('\\') == std::string::npos) {
        return id;
      }
    }
  }
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto src = j.find("source");
  auto boot = j.find("boot_id");
  auto seq = j.find("seq");
  if (src == j.end() || boot == j.end() || seq == j.end() || !src->is_string() ||
      !boot->is_string() || !seq->is_number_unsigned()) {
    return std::nullopt;
  }
  auto host = j.find("host");
  return LineIdentity{src->get<std::string>(), boot->get<std::string>(), seq->get<std::uint64_t>(),
                      host != j.end() && host->is_string() ? host->get<std::string>() : ""};
}

bool ChainVerifier::feed(std::string_view line) {
  if (broken()) return false;
  ++lines_;
  auto j = nlohmann::json::parse(line, nullptr, false);
  std::string prev;
  if (j.is_discarded() || !j.is_object()) {
    error_ = "not a JSON object";
  } else if (auto it = j.find("prev_hash"); it == j.end() || !it->is_string()) {
    error_ = "no prev_hash";
  } else {
    prev = it->get<std::string>();
    const std::string& want = lines_ == 1 ? expected_.value_or(prev) : last_hash_;
    if (prev != want)
      error_ = "prev_hash " + prev + " does not match the previous line (" + want + ")";
  }
  if (!error_.empty()) {
    broken_line_ = lines_;
    return false;
  }
  last_hash_ = sha256_hex(line);
  return true;
}

}  // namespace trading_heal::exporter
