// What the actuator knows about each agent and about the fleet: the phase of its incident, the
// facts of its last report, its restart history and pause; the global incident; the counters.
// Plain data: the core's units (actuator/src/core) change it, the Engine owns it.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "trading_heal/common/clock.hpp"
#include "trading_heal/common/config.hpp"
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

// The phase of an agent's incident; its transitions are the table in transitions.hpp
// (docs/actuator-states.md). Paused is a flag beside the phase, not a phase.
enum class Phase {
  kHealthy,
  kFailing,
  kDiagnosing,
  kRestarting,
  kRecovering,
  kExhausted,
  kStopped
};
inline constexpr int kPhaseCount = 7;
std::string_view to_string(Phase p);
std::optional<Phase> phase_from_string(std::string_view s);

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

// Many hosts: the centre's last order (a `fleet_directive` passed on by the probe). It holds
// this host's restarts while it is repeated; unheard for kFleetOrderTtl it lapses and the host
// decides alone again. Not persisted: after a restart the centre's next repeat (2 s) says it.
struct FleetOrder {
  bool hold = false;              // the centre holds every host but `canary_host`
  std::string incident;           // the centre's incident (or breaker) id
  std::string cause;              // "agents" | "fleet_max_restarts"
  std::string canary_host;        // the one host that may restart (its TRADING_HEAL_HOST)
  std::string reason;             // for people
  std::optional<MonoTime> until;  // when it lapses unless repeated
  bool holding = false;           // this host holds for it (as last audited)
};

// The longest diagnosis cause the engine keeps (bytes; longer ones are cut, marked with "…").
inline constexpr std::size_t kMaxCauseBytes = 300;

}  // namespace trading_heal::actuator
