// The actuator's pure core: one incident state machine per agent, the rate limits, the global
// incident (correlation, canary) and the persistent model. No sockets, no clock reads, no I/O,
// no logging: every input carries the time, every output is a Decision the shell carries out.
// Not thread-safe: owned by the daemon's loop thread (or a test).
//
//   HEALTHY ─fail─▶ FAILING ─n ≥ threshold─▶ DIAGNOSING ─diagnosis or deadline─▶ RESTARTING
//      ▲                                         │ blocked: rate_limited (once per incident)
//      └──────── healthy ◀── RECOVERING ◀── restart done      grace passed: restart_ineffective
//   n ≥ exhausted_after ─▶ EXHAUSTED      operator: paused flag      clean stop: STOPPED
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

#include "trading_heal/actuator/policy.hpp"
#include "trading_heal/common/clock.hpp"
#include "trading_heal/common/config.hpp"
#include "trading_heal/proto/actions.hpp"
#include "trading_heal/proto/messages.hpp"

namespace trading_heal::actuator {

using common::MonoTime;
using common::WallTime;

// Both clocks at one instant: deadlines use the monotonic one; the persisted history, pause
// expiries and event timestamps need the wall clock.
struct Now {
  MonoTime mono;
  WallTime wall;
};

enum class Phase {
  kHealthy,
  kFailing,
  kDiagnosing,
  kRestarting,
  kRecovering,
  kExhausted,
  kStopped
};
std::string_view to_string(Phase p);
std::optional<Phase> phase_from_string(std::string_view s);

// Restart the unit of `agent`. The unit name comes from the configured AgentSpec, never from a
// message.
struct RestartDecision {
  std::string agent;
  std::string unit;
  std::string reason;                    // "stalled (age=1500s)"
  std::optional<std::string> diagnosis;  // the diagnosis' cause, when one came in time
  std::string log_line;       // "SELF-HEAL: restarting BTC-USDT | reason: ... | Ollama: ..."
  bool reset_failed = false;  // the unit is `failed` (e.g. start-limit-hit): reset it first
  std::uint32_t old_pid = 0;  // MainPID in the last report
  std::string incident;
  bool canary = false;
};

// An audit event for the exporter (the shell stamps and sends it reliably).
using Decision = std::variant<RestartDecision, proto::Event>;
using Decisions = std::vector<Decision>;

enum class Outcome { kRestarted, kFailed, kDeferred };
struct RestartResult {
  std::string agent;
  Outcome outcome = Outcome::kRestarted;
  bool dry_run = false;
  std::string detail;  // why it failed / was deferred, or the verification summary
  std::uint32_t old_pid = 0;
  std::uint32_t new_pid = 0;
  double elapsed_seconds = 0;
  bool reset_failed = false;  // a reset-failed was issued before the restart
};

struct CommandResult {
  bool ok = false;
  std::string detail;  // JSON text for status, a message otherwise
  Decisions decisions;
};

struct Counters {
  std::uint64_t health_reports = 0;
  std::uint64_t diagnoses = 0;
  std::uint64_t commands = 0;
  std::uint64_t rejected_unknown_agent = 0;
  std::uint64_t rejected_unit_mismatch = 0;
  std::uint64_t restarts_issued = 0;
  std::uint64_t restarts_ok = 0;
  std::uint64_t restarts_failed = 0;
  std::uint64_t restarts_deferred = 0;
  std::uint64_t would_restart = 0;  // dry run: restarts decided and not made
  std::uint64_t restarts_ineffective = 0;
  std::uint64_t rate_limited = 0;
  std::uint64_t exhausted = 0;
  std::uint64_t left_to_systemd = 0;
  std::uint64_t global_incidents = 0;
  std::uint64_t held = 0;
};

struct AgentState {
  common::AgentSpec spec;
  Phase phase = Phase::kHealthy;
  proto::Verdict last_verdict = proto::Verdict::kUnknown;
  std::optional<MonoTime> last_report;
  std::uint32_t consecutive = 0;
  std::uint32_t exhaust_base = 0;  // consecutive failures already forgiven by a resume
  std::string reason;              // the current failure, "stalled (age=1500s)"
  std::string active_state, sub_state, result;
  std::uint32_t main_pid = 0;
  bool systemd_busy = false;  // auto-restart / activating: systemd's own Restart= is acting

  // The open incident.
  std::string incident;
  std::optional<MonoTime> incident_start;
  std::optional<MonoTime> unhealthy_since;  // turned unhealthy (for correlation)
  std::optional<MonoTime> ready_at;         // DIAGNOSING: restart at the latest at this time
  std::optional<MonoTime> retry_at;         // blocked or deferred: look again at this time
  std::optional<MonoTime> recovery_deadline;
  bool rate_limited_emitted = false;
  bool exhausted_emitted = false;
  bool restarted_in_incident = false;
  bool held = false;  // held back by the global incident

  std::optional<std::string> diagnosis;  // cause of the latest diagnosis for this incident
  std::optional<MonoTime> diagnosis_at;
  std::string last_diagnosis;  // the latest diagnosis' cause, kept after the incident (/status)

  // Restart history (sliding window) and backoff; persisted.
  std::deque<MonoTime> restarts;
  std::optional<MonoTime> last_restart;
  std::optional<MonoTime> prev_last_restart;  // to refund a deferred restart
  // MainPID before the restart in flight (persisted): after our own crash, a report still
  // showing it means the restart never happened.
  std::uint32_t restart_old_pid = 0;
  int backoff_level = 0;                      // restarts in a row that did not help
  std::chrono::milliseconds backoff_wait{0};  // extra wait after last_restart (with jitter)
  std::optional<MonoTime> healthy_since;

  bool paused = false;
  std::optional<WallTime> pause_until;
  std::string pause_reason;
};

struct GlobalIncident {
  enum class Stage { kCanaryPending, kCanaryTesting, kReleasing, kHeld };
  bool active = false;
  std::string id;
  std::string cause;  // "agents" | "database_unreachable"
  std::optional<MonoTime> opened;
  std::set<std::string> members;
  std::string canary;
  Stage stage = Stage::kCanaryPending;
};
std::string_view to_string(GlobalIncident::Stage s);

// The longest diagnosis cause the engine keeps (bytes; longer ones are cut, marked with "…").
inline constexpr std::size_t kMaxCauseBytes = 300;

class Engine {
 public:
  Engine(const std::vector<common::AgentSpec>& agents, Policy policy, std::uint64_t seed = 1);

  Decisions on_health(const proto::HealthReport& r, Now now);
  // The probe's own heartbeat: `db_reachable=false` in its stats opens a global incident.
  Decisions on_probe_heartbeat(const proto::Heartbeat& hb, Now now);
  // Returns false (and counts) when the diagnosis names no configured agent.
  Decisions on_diagnosis(const proto::Diagnosis& d, Now now, bool* accepted = nullptr);
  CommandResult on_command(const proto::Command& c, Now now);
  Decisions on_restart_result(const RestartResult& r, Now now);
  Decisions on_tick(Now now);
  // The earliest time on_tick has something to do, if any.
  std::optional<MonoTime> next_deadline(Now now) const;

  // One `agent_state` event per agent (STATE for the PUB socket, not audit).
  std::vector<proto::Event> agent_states(Now now) const;
  // The `agent_state` event of one agent; nullopt for an instance that is not configured.
  std::optional<proto::Event> agent_state(const std::string& instance, Now now) const;
  nlohmann::json status_json(Now now) const;

  // Persistence: restart history, pause flags, open incidents (times as epoch seconds).
  nlohmann::json to_json(Now now) const;
  // Replaces the persisted parts from `j`; on error nothing is changed. Unknown agents in the
  // file (removed from the configuration) are ignored.
  tl::expected<void, std::string> load_json(const nlohmann::json& j, Now now);
  // True once after anything persisted changed.
  bool take_dirty() {
    bool d = dirty_;
    dirty_ = false;
    return d;
  }

  const AgentState* agent(const std::string& instance) const;
  const GlobalIncident& global() const { return global_; }
  const Counters& counters() const { return counters_; }
  const Policy& policy() const { return policy_; }
  int restarts_in_window(const AgentState& a, MonoTime now) const;

 private:
  AgentState* find(const std::string& instance);
  void on_failing(AgentState& a, Now now, Decisions& out);
  void on_healthy(AgentState& a, const proto::HealthReport& r, Now now, Decisions& out);
  void interrupted(AgentState& a, Now now, Decisions& out);
  void attempt(AgentState& a, Now now, Decisions& out);
  bool global_allows(AgentState& a, Now now, Decisions& out);
  void check_global_open(Now now, const std::string& cause, Decisions& out);
  void check_global_close(Now now);
  void release_next(Now now, Decisions& out);
  void escalate(Now now, const std::string& why, Decisions& out);
  void close_incident(AgentState& a);
  void prune(AgentState& a, MonoTime now) const;
  int fleet_restarts_in_window(MonoTime now) const;
  bool fresh(const AgentState& a, MonoTime now) const;
  proto::Event event(const AgentState& a, proto::Action action, bool success,
                     std::string detail) const;
  proto::Event state_event(const AgentState& a, Now now) const;

  Policy policy_;
  std::vector<AgentState> agents_;
  GlobalIncident global_;
  bool db_unreachable_ = false;
  Counters counters_;
  std::mt19937_64 rng_;
  bool dirty_ = false;
};

// The restart reason for a report: "stalled (age=1500s)", "down (failed/failed)".
std::string reason_for(const proto::HealthReport& r);
// SELF-HEAL: restarting BTC-USDT | reason: stalled (age=1500s) | Ollama: DB lock on decisions table
std::string restart_log_line(const common::AgentSpec& spec, const std::string& reason,
                             const std::optional<std::string>& diagnosis);

}  // namespace trading_heal::actuator
