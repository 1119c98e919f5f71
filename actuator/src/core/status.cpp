// Status views (units.hpp): the `agent_state` event published per agent and the /status JSON.
#include "budget.hpp"
#include "units.hpp"

namespace trading_heal::actuator::status {
namespace {

nlohmann::json wall_or_null(const std::optional<MonoTime>& t, Now now) {
  return t ? nlohmann::json(wall_of(*t, now)) : nlohmann::json(nullptr);
}

std::string shown_state(const AgentState& a) {
  return a.paused ? std::string("PAUSED") : std::string(to_string(a.phase));
}

nlohmann::json agent_json(const Model& m, const AgentState& a, Now now) {
  return {{"symbol", a.spec.symbol},
          {"profile", a.spec.profile},
          {"unit", a.spec.unit},
          {"state", shown_state(a)},
          {"phase", std::string(to_string(a.phase))},
          {"verdict", std::string(proto::to_string(a.last_verdict))},
          {"consecutive_failures", a.consecutive},
          {"paused", a.paused},
          {"pause_until",
           a.pause_until ? nlohmann::json(epoch(*a.pause_until)) : nlohmann::json(nullptr)},
          {"pause_reason", a.pause_reason},
          {"restarts_hour", budget::in_window(m.policy, a, now.mono)},
          {"last_restart_ts", wall_or_null(a.last_restart, now)},
          {"incident", a.incident},
          {"incident_start_ts", wall_or_null(a.incident_start, now)},
          {"reason", a.reason},
          {"last_diagnosis",
           a.last_diagnosis.empty() ? nlohmann::json(nullptr) : nlohmann::json(a.last_diagnosis)},
          {"backoff_level", a.backoff_level},
          {"held", a.held}};
}

}  // namespace

proto::Event agent_state(const Model& m, const AgentState& a, Now now) {
  proto::Event e = event(a, proto::Action::kAgentState, true, "");
  e.fields["state"] = shown_state(a);
  e.fields["phase"] = std::string(to_string(a.phase));
  e.fields["paused"] = a.paused;
  e.fields["pause_until"] = a.pause_until ? epoch(*a.pause_until) : 0.0;
  e.fields["restarts_hour"] = static_cast<std::int64_t>(budget::in_window(m.policy, a, now.mono));
  e.fields["last_restart_ts"] = a.last_restart ? wall_of(*a.last_restart, now) : 0.0;
  e.fields["incident_start_ts"] = a.incident_start ? wall_of(*a.incident_start, now) : 0.0;
  e.fields["last_diagnosis"] = a.last_diagnosis;
  e.fields["consecutive_failures"] = static_cast<std::int64_t>(a.consecutive);
  e.fields["held"] = a.held;
  e.fields["global_incident"] = m.global.active && m.global.members.count(a.spec.instance) > 0;
  return e;
}

nlohmann::json global_incident_json(const GlobalIncident& gi) {
  if (!gi.active) return nullptr;
  return {{"id", gi.id},
          {"cause", gi.cause},
          {"stage", std::string(to_string(gi.stage))},
          {"canary", gi.canary},
          {"members", std::vector<std::string>(gi.members.begin(), gi.members.end())}};
}

nlohmann::json to_json(const Model& m, Now now) {
  nlohmann::json agents = nlohmann::json::object();
  for (const auto& a : m.agents) agents[a.spec.instance] = agent_json(m, a, now);
  const nlohmann::json g = global_incident_json(m.global);
  nlohmann::json fleet = nullptr;  // many hosts: the centre's order while this host holds for it
  if (m.fleet.holding) {
    fleet = {{"incident", m.fleet.incident},
             {"cause", m.fleet.cause},
             {"canary_host", m.fleet.canary_host},
             {"reason", m.fleet.reason}};
  }
  return {{"agents", agents},
          {"global_incident", g},
          {"fleet_hold", fleet},
          {"fleet_restarts_hour", budget::fleet_in_window(m, now.mono)}};
}

}  // namespace trading_heal::actuator::status
