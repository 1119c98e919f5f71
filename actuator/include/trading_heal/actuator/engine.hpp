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

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

#include "trading_heal/actuator/agent_state.hpp"
#include "trading_heal/actuator/decisions.hpp"
#include "trading_heal/actuator/policy.hpp"
#include "trading_heal/proto/actions.hpp"
#include "trading_heal/proto/messages.hpp"

namespace trading_heal::actuator {

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

}  // namespace trading_heal::actuator
