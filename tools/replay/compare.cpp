#include "compare.hpp"

#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include <nlohmann/json.hpp>

namespace trading_heal::replay {
namespace {

// "2026-12-03T15:44:11.248Z" -> epoch seconds.
std::optional<double> iso_seconds(const std::string& s) {
  std::tm tm{};
  const char* rest = ::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == nullptr) return std::nullopt;
  double frac = 0;
  if (*rest == '.') {
    char* end = nullptr;
    frac = std::strtod(rest, &end);
    rest = end;
  }
  if (std::string(rest) != "Z") return std::nullopt;
  return static_cast<double>(::timegm(&tm)) + frac;
}

template <class F>
tl::expected<void, std::string> each_line(const std::string& text, F&& f) {
  std::istringstream in(text);
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return tl::unexpected("line " + std::to_string(n) + ": not a JSON object");
    }
    if (auto e = f(j, n); !e.empty()) return tl::unexpected("line " + std::to_string(n) + ": " + e);
  }
  return {};
}

std::string text(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

tl::expected<std::vector<Action>, std::string> audit_actions(const std::string& jsonl,
                                                             bool restarts) {
  std::vector<Action> out;
  auto r = each_line(jsonl, [&](const nlohmann::json& j, std::size_t) -> std::string {
    const std::string action = text(j, "action");
    if (action != "would_restart" && !(restarts && action == "restart")) return {};
    if (j.contains("success") && j["success"].is_boolean() && !j["success"].get<bool>()) return {};
    auto at = iso_seconds(text(j, "ts"));
    if (!at) return "ts '" + text(j, "ts") + "' is not an ISO 8601 UTC time";
    out.push_back({text(j, "agent"), *at});
    return {};
  });
  if (!r) return tl::unexpected(r.error());
  return out;
}

tl::expected<std::vector<Action>, std::string> journal_restarts(const std::string& json_lines) {
  std::vector<Action> out;
  const std::string prefix = "crypto-agent@";
  const std::string suffix = ".service";
  auto r = each_line(json_lines, [&](const nlohmann::json& j, std::size_t) -> std::string {
    if (text(j, "JOB_TYPE") != "restart" || text(j, "JOB_RESULT") != "done") return {};
    std::string unit = text(j, "UNIT");
    if (unit.empty()) unit = text(j, "USER_UNIT");
    if (unit.rfind(prefix, 0) != 0 || unit.size() <= prefix.size() + suffix.size() ||
        unit.compare(unit.size() - suffix.size(), suffix.size(), suffix) != 0) {
      return {};
    }
    const std::string us = text(j, "__REALTIME_TIMESTAMP");
    char* end = nullptr;
    const double micros = std::strtod(us.c_str(), &end);
    if (us.empty() || *end != '\0') return "__REALTIME_TIMESTAMP '" + us + "' is not a number";
    out.push_back(
        {unit.substr(prefix.size(), unit.size() - prefix.size() - suffix.size()), micros / 1e6});
    return {};
  });
  if (!r) return tl::unexpected(r.error());
  return out;
}

Comparison compare(std::vector<Action> ours, std::vector<Action> theirs, double window_s) {
  auto by_time = [](const Action& a, const Action& b) { return a.at < b.at; };
  std::sort(ours.begin(), ours.end(), by_time);
  std::sort(theirs.begin(), theirs.end(), by_time);
  std::vector<bool> used(theirs.size(), false);
  Comparison c;
  for (const auto& o : ours) {
    bool matched = false;
    for (std::size_t k = 0; k < theirs.size(); ++k) {
      if (used[k] || theirs[k].agent != o.agent || std::fabs(theirs[k].at - o.at) > window_s) {
        continue;
      }
      used[k] = true;
      c.agreed.emplace_back(o, theirs[k]);
      matched = true;
      break;
    }
    if (!matched) c.only_ours.push_back(o);
  }
  for (std::size_t k = 0; k < theirs.size(); ++k) {
    if (!used[k]) c.only_theirs.push_back(theirs[k]);
  }
  return c;
}

}  // namespace trading_heal::replay
