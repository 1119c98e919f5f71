// The state file's model (units.hpp): version 1, unchanged since the first release (files
// written before `last_diagnosis` and `restart_old_pid` existed still load). What the file
// holds is the truth about the past; the restored phase goes through the table (`restored`).
#include <algorithm>

#include "units.hpp"

namespace trading_heal::actuator::persistence {
namespace {

using json = nlohmann::json;

json wall_or_null(const std::optional<MonoTime>& t, Now now) {
  return t ? json(wall_of(*t, now)) : json(nullptr);
}

json save_agent(const AgentState& a, Now now) {
  std::vector<double> restarts;
  for (auto t : a.restarts) restarts.push_back(wall_of(t, now));
  return {{"phase", std::string(to_string(a.phase))},
          {"consecutive", a.consecutive},
          {"exhaust_base", a.exhaust_base},
          {"reason", a.reason},
          {"incident", a.incident},
          {"incident_start", wall_or_null(a.incident_start, now)},
          {"rate_limited_emitted", a.rate_limited_emitted},
          {"exhausted_emitted", a.exhausted_emitted},
          {"restarted_in_incident", a.restarted_in_incident},
          {"diagnosis", a.diagnosis ? json(*a.diagnosis) : json(nullptr)},
          {"last_diagnosis", a.last_diagnosis},
          {"restart_old_pid", a.restart_old_pid},
          {"restarts", restarts},
          {"last_restart", wall_or_null(a.last_restart, now)},
          {"backoff_level", a.backoff_level},
          {"backoff_wait_ms", a.backoff_wait.count()},
          {"healthy_since", wall_or_null(a.healthy_since, now)},
          {"paused", a.paused},
          {"pause_until", a.pause_until ? json(epoch(*a.pause_until)) : json(nullptr)},
          {"pause_reason", a.pause_reason}};
}

std::optional<MonoTime> mono_or_null(const json& v, Now now) {
  if (v.is_null()) return std::nullopt;
  return mono_of(v.get<double>(), now);
}

// Throws nlohmann::json::exception on a missing or mistyped field.
void load_agent(const Policy& p, AgentState& a, const json& s, Now now) {
  a.consecutive = s.at("consecutive").get<std::uint32_t>();
  a.exhaust_base = s.at("exhaust_base").get<std::uint32_t>();
  a.reason = s.at("reason").get<std::string>();
  a.incident = s.at("incident").get<std::string>();
  a.incident_start = mono_or_null(s.at("incident_start"), now);
  a.rate_limited_emitted = s.at("rate_limited_emitted").get<bool>();
  a.exhausted_emitted = s.at("exhausted_emitted").get<bool>();
  a.restarted_in_incident = s.at("restarted_in_incident").get<bool>();
  if (!s.at("diagnosis").is_null()) a.diagnosis = s.at("diagnosis").get<std::string>();
  a.last_diagnosis = s.value("last_diagnosis", a.diagnosis.value_or(""));  // older files lack it
  a.restart_old_pid = s.value("restart_old_pid", 0U);
  a.restarts.clear();
  for (const auto& t : s.at("restarts")) {
    MonoTime m = mono_of(t.get<double>(), now);
    if (now.mono - m < p.window) a.restarts.push_back(m);
  }
  std::sort(a.restarts.begin(), a.restarts.end());
  a.last_restart = mono_or_null(s.at("last_restart"), now);
  a.backoff_level = s.at("backoff_level").get<int>();
  a.backoff_wait = std::chrono::milliseconds(s.at("backoff_wait_ms").get<std::int64_t>());
  a.healthy_since = mono_or_null(s.at("healthy_since"), now);
  a.paused = s.at("paused").get<bool>();
  if (!s.at("pause_until").is_null()) {
    a.pause_until = common::from_epoch_seconds(s.at("pause_until").get<double>());
  }
  a.pause_reason = s.at("pause_reason").get<std::string>();
}

GlobalIncident load_global(const json& s, Now now) {
  GlobalIncident g;
  g.active = true;
  g.id = s.at("id").get<std::string>();
  g.cause = s.at("cause").get<std::string>();
  g.canary = s.at("canary").get<std::string>();
  g.opened = mono_or_null(s.at("opened"), now);
  for (const auto& m : s.at("members")) g.members.insert(m.get<std::string>());
  const auto stage = s.at("stage").get<std::string>();
  g.stage = GlobalIncident::Stage::kCanaryPending;
  for (auto st : {GlobalIncident::Stage::kCanaryTesting, GlobalIncident::Stage::kReleasing,
                  GlobalIncident::Stage::kHeld}) {
    if (to_string(st) == stage) g.stage = st;
  }
  return g;
}

}  // namespace

json save(const Model& m, Now now) {
  json agents = json::object();
  for (const auto& a : m.agents) agents[a.spec.instance] = save_agent(a, now);
  json g = status::global_incident_json(m.global);
  if (m.global.active) g["opened"] = wall_or_null(m.global.opened, now);
  return {{"version", 1}, {"saved_at", epoch(now.wall)}, {"agents", agents}, {"global", g}};
}

tl::expected<void, std::string> load(Model& m, const json& j, Now now) {
  Model next = m;  // changed only when all of `j` loaded
  Decisions none;
  Step s{next, now, none};
  try {
    if (!j.is_object() || j.at("version").get<int>() != 1) {
      return tl::unexpected(std::string("unknown version"));
    }
    for (const auto& [name, saved] : j.at("agents").items()) {
      AgentState* a = next.find(name);
      if (a == nullptr) continue;  // no longer configured
      auto phase = phase_from_string(saved.at("phase").get<std::string>());
      if (!phase) return tl::unexpected("agent " + name + ": unknown phase");
      load_agent(next.policy, *a, saved, now);
      a->phase = *phase;  // as persisted; `restored` decides what it means now
      fire(s, *a, Event::kRestored);
    }
    next.global = j.at("global").is_null() ? GlobalIncident{} : load_global(j.at("global"), now);
  } catch (const json::exception& e) {
    return tl::unexpected(std::string("bad state: ") + e.what());
  }
  m.agents = std::move(next.agents);
  m.global = std::move(next.global);
  return {};
}

}  // namespace trading_heal::actuator::persistence
