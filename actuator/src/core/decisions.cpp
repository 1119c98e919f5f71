// The texts of a restart: its reason and the SELF-HEAL log line (decisions.hpp).
#include "trading_heal/actuator/decisions.hpp"

#include <cmath>

namespace trading_heal::actuator {
namespace {

std::string label(const common::AgentSpec& s) {
  return s.profile.empty() || s.profile == "default" ? s.symbol : s.symbol + "/" + s.profile;
}

}  // namespace

std::string reason_for(const proto::HealthReport& r) {
  if (r.verdict == proto::Verdict::kStalled) {
    if (!r.decision_age_seconds) return "stalled";
    return "stalled (age=" + std::to_string(std::llround(*r.decision_age_seconds)) + "s)";
  }
  if (r.verdict == proto::Verdict::kDown) {
    if (r.active_state.empty()) return "down";
    std::string s = "down (" + r.active_state + (r.sub_state.empty() ? "" : "/" + r.sub_state);
    // An inactive unit with a clean result is DOWN only when nobody stopped it (the probe's
    // detail says so): the restart line tells it from a crash.
    if (r.detail.find("exited on its own") != std::string::npos) {
      s += ", exited on its own (status=0)";
    }
    return s + ")";
  }
  return std::string(proto::to_string(r.verdict));
}

std::string restart_log_line(const common::AgentSpec& spec, const std::string& reason,
                             const std::optional<std::string>& diagnosis) {
  return "SELF-HEAL: restarting " + label(spec) + " | reason: " + reason +
         " | Ollama: " + (diagnosis && !diagnosis->empty() ? *diagnosis : "unavailable");
}

}  // namespace trading_heal::actuator
