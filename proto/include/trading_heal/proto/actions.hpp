// Every audit action, in one list: what `Event::action` may say. The code names actions only
// through this enum; proto/PROTOCOL.md and docs/operations.md list exactly these (a test
// compares), so the documents and the code cannot drift. Adding one? Add it here (enum and
// kActions), to both documents, and to the exporter's kAgentActions if every configured agent
// should have its trading_selfheal_actions_total series from the start.
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace trading_heal::proto {

enum class Action {
  kRestart,
  kRestartFailed,
  kWouldRestart,
  kRecovered,
  kRateLimited,
  kExhausted,
  kRestartIneffective,
  kRestartInterrupted,
  kDeferred,
  kDiagnosis,
  kDiagnosisAfterRestart,
  kOllamaError,
  kGlobalIncident,
  kPaused,
  kResumed,
  kConfigMismatch,
  kStateCorrupt,
  kAgentState,      // not an audit record: the actuator's per-agent state on its PUB
  kFleetIncident,   // the centre's: a fleet-wide incident or breaker opened, moved on, closed
  kFleetHold,       // a host's actuator: it holds its restarts for the centre, or no longer
  kFleetDirective,  // not an audit record: the centre's order to every host, repeated
};

struct ActionName {
  Action action;
  std::string_view name;
};
inline constexpr std::array<ActionName, 21> kActions{{
    {Action::kRestart, "restart"},
    {Action::kRestartFailed, "restart_failed"},
    {Action::kWouldRestart, "would_restart"},
    {Action::kRecovered, "recovered"},
    {Action::kRateLimited, "rate_limited"},
    {Action::kExhausted, "exhausted"},
    {Action::kRestartIneffective, "restart_ineffective"},
    {Action::kRestartInterrupted, "restart_interrupted"},
    {Action::kDeferred, "deferred"},
    {Action::kDiagnosis, "diagnosis"},
    {Action::kDiagnosisAfterRestart, "diagnosis_after_restart"},
    {Action::kOllamaError, "ollama_error"},
    {Action::kGlobalIncident, "global_incident"},
    {Action::kPaused, "paused"},
    {Action::kResumed, "resumed"},
    {Action::kConfigMismatch, "config_mismatch"},
    {Action::kStateCorrupt, "state_corrupt"},
    {Action::kAgentState, "agent_state"},
    {Action::kFleetIncident, "fleet_incident"},
    {Action::kFleetHold, "fleet_hold"},
    {Action::kFleetDirective, "fleet_directive"},
}};
// Not audit records: state carried on PUB sockets, never written to the audit.
constexpr bool is_state_only(Action a) {
  return a == Action::kAgentState || a == Action::kFleetDirective;
}

constexpr std::string_view to_string(Action a) {
  for (const auto& e : kActions) {
    if (e.action == a) return e.name;
  }
  return "unknown";
}
inline std::string name(Action a) { return std::string(to_string(a)); }

}  // namespace trading_heal::proto
