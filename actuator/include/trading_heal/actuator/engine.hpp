// The actuator's pure core: one incident machine per agent (the table in transitions.hpp, drawn
// in docs/actuator-states.md), the restart budget, the global incident (correlation, canary),
// operator commands and the persistent model. No sockets, no clock reads, no I/O, no logging:
// every input carries the time, every output is a Decision the shell carries out.
// Not thread-safe: owned by the daemon's loop thread (or a test).
//
// The Engine is the dispatcher: it turns each input into events for the table and hands the
// rest to the core's units (actuator/src/core: budget, global_incident, commands, status,
// persistence).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

#include "trading_heal/actuator/agent_state.hpp"
#include "trading_heal/actuator/decisions.hpp"
#include "trading_heal/actuator/model.hpp"
#include "trading_heal/actuator/policy.hpp"
#include "trading_heal/proto/messages.hpp"

namespace trading_heal::actuator {

class Engine {
 public:
  Engine(const std::vector<common::AgentSpec>& agents, Policy policy, std::uint64_t seed = 1);

  Decisions on_health(const proto::HealthReport& r, Now now);
  // The probe's own heartbeat: `db_reachable=false` in its stats opens a global incident.
  Decisions on_probe_heartbeat(const proto::Heartbeat& hb, Now now);
  // Many hosts: the centre's order, passed on by the probe (a `fleet_directive` event).
  Decisions on_fleet_directive(const proto::Event& e, Now now);
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
    bool d = m_.dirty;
    m_.dirty = false;
    return d;
  }

  const AgentState* agent(const std::string& instance) const { return m_.find(instance); }
  const GlobalIncident& global() const { return m_.global; }
  const FleetOrder& fleet() const { return m_.fleet; }
  const Counters& counters() const { return m_.counters; }
  const Policy& policy() const { return m_.policy; }
  int restarts_in_window(const AgentState& a, MonoTime now) const;

 private:
  Model m_;
};

}  // namespace trading_heal::actuator
