// The Engine: each input becomes events for the incident machine (transitions.cpp), after the
// facts it carries are noted; the units do the rest (see engine.hpp).
#include "trading_heal/actuator/engine.hpp"

#include "budget.hpp"
#include "fleet_order.hpp"
#include "global_incident.hpp"
#include "trading_heal/proto/codec.hpp"
#include "units.hpp"

namespace trading_heal::actuator {
namespace {

void note_facts(AgentState& a, const proto::HealthReport& r, Now now) {
  a.last_report = now.mono;
  a.last_verdict = r.verdict;
  a.consecutive = r.consecutive_failures;
  a.active_state = r.active_state;
  a.sub_state = r.sub_state;
  a.result = r.result;
  a.main_pid = r.main_pid;
  a.systemd_busy = r.sub_state == "auto-restart" || r.active_state == "activating";
}

Event verdict_event(proto::Verdict v) {
  switch (v) {
    case proto::Verdict::kHealthy:
      return Event::kHealthy;
    case proto::Verdict::kDown:
    case proto::Verdict::kStalled:
      return Event::kFailing;
    case proto::Verdict::kStopped:
      return Event::kStopped;
    case proto::Verdict::kUnknown:
      break;
  }
  return Event::kUnknown;
}

// What the report says about a restart persisted in flight (its MainPID before), if anything.
std::optional<Event> pid_event(const AgentState& a, const proto::HealthReport& r) {
  if (a.restart_old_pid == 0 || r.main_pid == 0) return std::nullopt;
  if (r.main_pid != a.restart_old_pid) return Event::kPidChanged;
  if (failing(r.verdict)) return Event::kPidUnchanged;
  return std::nullopt;
}

// Its cause is kept, logged, persisted and published with every state: bounded here, whatever
// the sender sent.
std::string bounded_cause(const std::string& cause) {
  if (cause.size() <= kMaxCauseBytes) return cause;
  return proto::sanitize_utf8(std::string_view(cause).substr(0, kMaxCauseBytes)) + "…";
}

void keep_min(std::optional<MonoTime>& acc, std::optional<MonoTime> t) {
  if (t && (!acc || *t < *acc)) acc = t;
}

}  // namespace

Engine::Engine(const std::vector<common::AgentSpec>& agents, Policy policy, std::uint64_t seed) {
  m_.policy = std::move(policy);
  m_.rng.seed(seed);
  for (const auto& spec : agents) {
    AgentState a;
    a.spec = spec;
    a.spec.unit = common::unit_for(spec.instance);  // never anything else
    m_.agents.push_back(std::move(a));
  }
}

Decisions Engine::on_health(const proto::HealthReport& r, Now now) {
  Decisions out;
  AgentState* a = m_.find(r.agent);
  if (a == nullptr) {
    ++m_.counters.rejected_unknown_agent;
    return out;
  }
  if (!r.unit.empty() && r.unit != a->spec.unit) {
    ++m_.counters.rejected_unit_mismatch;
    return out;
  }
  ++m_.counters.health_reports;
  Step s{.m = m_, .now = now, .out = out, .report = &r};
  const auto pid = pid_event(*a, r);
  note_facts(*a, r, now);
  if (pid) fire(s, *a, *pid);
  if (failing(r.verdict)) {
    a->reason = reason_for(r);
    a->healthy_since.reset();
    global_incident::join(m_, *a);
  }
  fire(s, *a, verdict_event(r.verdict));
  global_incident::close_if_over(m_);
  return out;
}

Decisions Engine::on_probe_heartbeat(const proto::Heartbeat& hb, Now now) {
  Decisions out;
  auto it = hb.stats.find("db_reachable");
  if (it == hb.stats.end()) return out;
  const bool* reachable = std::get_if<bool>(&it->second);
  if (reachable == nullptr) return out;
  Step s{m_, now, out};
  global_incident::on_heartbeat(s, *reachable);
  return out;
}

Decisions Engine::on_fleet_directive(const proto::Event& e, Now now) {
  Decisions out;
  if (e.action != proto::to_string(proto::Action::kFleetDirective)) return out;
  Step s{m_, now, out};
  fleet_order::on_directive(s, e);
  return out;
}

Decisions Engine::on_diagnosis(const proto::Diagnosis& d, Now now, bool* accepted) {
  Decisions out;
  AgentState* a = m_.find(d.agent);
  if (accepted != nullptr) *accepted = a != nullptr;
  if (a == nullptr) {
    ++m_.counters.rejected_unknown_agent;
    return out;
  }
  ++m_.counters.diagnoses;
  // The diagnosis annotates; it never picks the target or widens the action (policy decides).
  std::string cause = bounded_cause(d.cause);
  a->diagnosis = cause.empty() ? std::optional<std::string>() : cause;
  a->diagnosis_at = now.mono;
  if (!cause.empty()) a->last_diagnosis = cause;
  Step s{.m = m_, .now = now, .out = out, .diagnosis = &d};
  fire(s, *a, Event::kDiagnosis);
  return out;
}

CommandResult Engine::on_command(const proto::Command& c, Now now) {
  return commands::handle(m_, c, now);
}

Decisions Engine::on_restart_result(const RestartResult& r, Now now) {
  Decisions out;
  AgentState* a = m_.find(r.agent);
  if (a == nullptr) return out;
  Step s{.m = m_, .now = now, .out = out, .result = &r};
  switch (r.outcome) {
    case Outcome::kRestarted:
      fire(s, *a, Event::kRestarted);
      break;
    case Outcome::kFailed:
      fire(s, *a, Event::kRestartFailed);
      break;
    case Outcome::kDeferred:
      fire(s, *a, Event::kRestartDeferred);
      break;
  }
  return out;
}

Decisions Engine::on_tick(Now now) {
  Decisions out;
  Step s{m_, now, out};
  for (auto& a : m_.agents) {
    commands::expire_pause(s, a);
    fire(s, a, Event::kTick);
  }
  global_incident::on_tick(s);
  global_incident::close_if_over(m_);
  fleet_order::on_tick(s);
  return out;
}

std::optional<MonoTime> Engine::next_deadline(Now now) const {
  std::optional<MonoTime> next = fleet_order::deadline(m_);
  for (const auto& a : m_.agents) {
    if (a.paused && a.pause_until) keep_min(next, mono_of(epoch(*a.pause_until), now));
    if (a.phase == Phase::kRecovering) keep_min(next, a.recovery_deadline);
    if (a.phase == Phase::kDiagnosing && !a.held && !a.paused) {
      std::optional<MonoTime> t = a.ready_at;
      if (t && a.retry_at && *a.retry_at > *t) t = a.retry_at;
      keep_min(next, t);
    }
    if (a.phase == Phase::kHealthy && a.backoff_level > 0 && a.healthy_since) {
      keep_min(next, *a.healthy_since + m_.policy.stable_after);
    }
  }
  return next;
}

std::vector<proto::Event> Engine::agent_states(Now now) const {
  std::vector<proto::Event> out;
  out.reserve(m_.agents.size());
  for (const auto& a : m_.agents) out.push_back(status::agent_state(m_, a, now));
  return out;
}

std::optional<proto::Event> Engine::agent_state(const std::string& instance, Now now) const {
  const AgentState* a = m_.find(instance);
  if (a == nullptr) return std::nullopt;
  return status::agent_state(m_, *a, now);
}

nlohmann::json Engine::status_json(Now now) const { return status::to_json(m_, now); }

nlohmann::json Engine::to_json(Now now) const { return persistence::save(m_, now); }

tl::expected<void, std::string> Engine::load_json(const nlohmann::json& j, Now now) {
  return persistence::load(m_, j, now);
}

int Engine::restarts_in_window(const AgentState& a, MonoTime now) const {
  return budget::in_window(m_.policy, a, now);
}

}  // namespace trading_heal::actuator
