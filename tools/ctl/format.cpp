#include "format.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <vector>

#include "trading_heal/common/text.hpp"

namespace trading_heal::ctl {
namespace {

// A field of the exporter's JSON as display text. Every string printed comes through here (or
// through common::inert directly): the exporter relays agents' log lines and LLM answers, and
// its own answer is not trusted to have cleaned them.
std::string str(const nlohmann::json& j, const char* key, const std::string& absent = "-") {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absent;
  if (it->is_string()) return common::inert(it->get_ref<const std::string&>());
  if (it->is_boolean()) return it->get<bool>() ? "yes" : "no";
  if (it->is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", it->get<double>());
    return buf;
  }
  // dump() escapes C0 controls inside strings but passes DEL and C1 controls through.
  return common::inert(it->dump());
}

std::string age(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return "?";
  const double s = it->get<double>();
  char buf[32];
  if (s < 120) {
    std::snprintf(buf, sizeof buf, "%.0fs", s);
  } else if (s < 7200) {
    std::snprintf(buf, sizeof buf, "%.0fm", s / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%.1fh", s / 3600);
  }
  return buf;
}

// The agent's stall threshold and, when learned from its history, " learned": "5m learned".
std::string threshold(const nlohmann::json& a) {
  auto it = a.find("stall_threshold_seconds");
  if (it == a.end() || !it->is_number()) return "-";
  return age(a, "stall_threshold_seconds") +
         (a.value("threshold_source", std::string()) == "learned" ? " learned" : "");
}

std::string pad(std::string s, std::size_t width) {
  // Width in code points, so a diagnosis with non-ASCII text does not break the columns.
  std::size_t cps = 0;
  for (unsigned char c : s) cps += (c & 0xC0) != 0x80;
  if (cps < width) s.append(width - cps, ' ');
  return s;
}

const char* verdict_colour(const std::string& v) {
  if (v == "HEALTHY") return "\033[32m";
  if (v == "STALLED") return "\033[33m";
  if (v == "DOWN") return "\033[31m";
  return "\033[90m";
}

}  // namespace

std::string format_status(const nlohmann::json& status, bool colour) {
  std::ostringstream out;
  const std::vector<std::pair<const char*, std::size_t>> cols{
      {"HOST", 14},     {"AGENT", 24},     {"SYMBOL", 12},       {"VERDICT", 9},
      {"AGE", 7},       {"THRESHOLD", 13}, {"FAILS", 6},         {"RESTARTS/H", 11},
      {"INCIDENT", 12}, {"PAUSED", 7},     {"LAST DIAGNOSIS", 0}};
  for (const auto& [name, w] : cols) out << (w ? pad(name, w) : std::string(name));
  out << "\n";
  if (status.contains("agents") && status["agents"].is_array()) {
    for (const auto& a : status["agents"]) {
      const std::string verdict = str(a, "verdict", "?");
      std::string v = pad(verdict, 9);
      if (colour) v = std::string(verdict_colour(verdict)).append(v).append("\033[0m");
      out << pad(str(a, "host", str(status, "host")), 14) << pad(str(a, "agent"), 24)
          << pad(str(a, "symbol"), 12) << v << pad(age(a, "decision_age_seconds"), 7)
          << pad(threshold(a), 13) << pad(str(a, "consecutive_failures"), 6)
          << pad(str(a, "restarts_hour"), 11)
          << pad(a.contains("crash_loop") && a["crash_loop"].is_object()
                     ? "CRASHLOOP:" + str(a["crash_loop"], "restarts_30m")
                     : str(a, "incident_state"),
                 12)
          << pad(str(a, "paused"), 7) << str(a, "last_diagnosis") << "\n";
    }
  }
  if (status.value("global_incident", false)) {
    out << (colour ? "\033[31m" : "") << "GLOBAL INCIDENT in progress" << (colour ? "\033[0m" : "")
        << "\n";
  }
  if (status.contains("components") && status["components"].is_object()) {
    out << "components:";
    for (const auto& [name, c] : status["components"].items()) {
      out << " " << common::inert(name) << "=" << (c.value("up", false) ? "up" : "SILENT");
    }
    out << "\n";
  }
  // Many hosts: each host the centre hears from (or no longer does).
  if (status.contains("hosts") && status["hosts"].is_object() && status["hosts"].size() > 1) {
    out << "hosts:";
    for (const auto& [name, h] : status["hosts"].items()) {
      out << " " << common::inert(name) << "=" << (h.value("up", false) ? "up" : "SILENT");
    }
    out << "\n";
  }
  // Many hosts: the centre's fleet incident or breaker, and whom it holds.
  if (status.contains("fleet") && status["fleet"].is_object()) {
    const auto& f = status["fleet"];
    out << (colour ? "\033[31m" : "") << "FLEET " << common::inert(str(f, "incident", "")) << " "
        << common::inert(str(f, "stage", str(f, "cause", ""))) << ": "
        << (f.value("hold", false) ? "hosts held" : "no host held") << (colour ? "\033[0m" : "")
        << " | " << common::inert(str(f, "reason", "")) << "\n";
  }
  return out.str();
}

std::string format_audit_line(const nlohmann::json& e) {
  std::ostringstream out;
  out << str(e, "ts") << "  " << pad(str(e, "action"), 20) << pad(str(e, "symbol"), 11);
  auto ok = e.find("success");
  if (ok != e.end() && ok->is_boolean() && !ok->get<bool>()) out << "FAILED  ";
  std::string text = str(e, "reason", "");
  const std::string detail = str(e, "detail", "");
  if (!detail.empty() && detail != text) text += (text.empty() ? "" : " | ") + detail;
  const std::string diagnosis = str(e, "diagnosis", "");
  if (!diagnosis.empty()) text += " | diagnosis: " + diagnosis;
  out << text;
  return out.str();
}

double parse_duration_seconds(const std::string& text) {
  if (text.empty()) return -1;
  char* end = nullptr;
  const double n = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || !std::isfinite(n) || n <= 0) return -1;
  const std::string unit(end);
  if (unit.empty() || unit == "s") return n;
  if (unit == "m") return n * 60;
  if (unit == "h") return n * 3600;
  if (unit == "d") return n * 86400;
  return -1;
}

}  // namespace trading_heal::ctl
