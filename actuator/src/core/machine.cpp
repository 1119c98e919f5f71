// The dispatcher that fires events through the transition table, the names of phases and
// events, and the helpers the core's units share (step.hpp).
#include "step.hpp"

namespace trading_heal::actuator {
namespace {

constexpr std::string_view kPhaseNames[kPhaseCount] = {
    "HEALTHY", "FAILING", "DIAGNOSING", "RESTARTING", "RECOVERING", "EXHAUSTED", "STOPPED"};

struct EventName {
  std::string_view name;
  std::string_view text;
};
constexpr EventName kEventNames[kEventCount] = {
    {"healthy", "a health report: healthy"},
    {"failing", "a health report: down or stalled"},
    {"stopped", "a health report: stopped cleanly (an operator's stop)"},
    {"unknown", "a health report without facts (UNKNOWN)"},
    {"pid_changed", "a report no longer shows the MainPID of the restart in flight"},
    {"pid_unchanged", "a failing report still shows it: that restart never happened"},
    {"diagnosis", "a diagnosis came in (its cause is kept before the event)"},
    {"restarted", "the restart's result: done"},
    {"restart_failed", "the restart's result: failed"},
    {"restart_deferred", "the restart's result: a pre-restart hook said not now"},
    {"tick", "the loop's tick: deadlines (per agent, after an expired pause ended)"},
    {"resume", "an operator's resume (after the pause flag is cleared)"},
    {"released", "the global incident releases its held agents, one at a time"},
    {"restored", "the state file was loaded: the phase is the persisted one"},
    {"attempt", "internal: the restart decision, its gates"},
    {"admitted", "internal: past the gates, the limits decide"},
};

}  // namespace

std::string_view to_string(Phase p) { return kPhaseNames[static_cast<int>(p)]; }

std::optional<Phase> phase_from_string(std::string_view s) {
  for (int i = 0; i < kPhaseCount; ++i) {
    if (kPhaseNames[i] == s) return static_cast<Phase>(i);
  }
  return std::nullopt;
}

std::string_view to_string(Event e) { return kEventNames[static_cast<int>(e)].name; }
std::string_view describe(Event e) { return kEventNames[static_cast<int>(e)].text; }

bool fire(Step& s, AgentState& a, Event e) {
  for (const Transition& t : transitions()) {
    if (t.from != a.phase || t.event != e) continue;
    if (t.guard != nullptr && !t.guard->holds(s, a)) continue;
    if (t.to != a.phase) {
      a.phase = t.to;
      s.m.dirty = true;  // the phase is persisted
    }
    if (t.action != nullptr) t.action->run(s, a);
    if (t.then) fire(s, a, *t.then);
    return true;
  }
  return false;
}

AgentState* Model::find(const std::string& instance) {
  for (auto& a : agents) {
    if (a.spec.instance == instance) return &a;
  }
  return nullptr;
}

const AgentState* Model::find(const std::string& instance) const {
  for (const auto& a : agents) {
    if (a.spec.instance == instance) return &a;
  }
  return nullptr;
}

bool failing(proto::Verdict v) {
  return v == proto::Verdict::kDown || v == proto::Verdict::kStalled;
}

bool fresh(const Policy& p, const AgentState& a, MonoTime now) {
  return a.last_report && now - *a.last_report <= 3 * p.interval;
}

proto::Event event(const AgentState& a, proto::Action action, bool success, std::string detail) {
  proto::Event e;
  e.action = proto::name(action);
  e.agent = a.spec.instance;
  e.symbol = a.spec.symbol;
  e.profile = a.spec.profile;
  e.success = success;
  e.detail = std::move(detail);
  e.reason = a.reason;
  e.diagnosis = a.diagnosis;
  if (!a.incident.empty()) e.fields["incident"] = a.incident;
  return e;
}

void close_incident(Model& m, AgentState& a) {
  a.incident.clear();
  a.incident_start.reset();
  a.unhealthy_since.reset();
  a.ready_at.reset();
  a.retry_at.reset();
  a.recovery_deadline.reset();
  a.rate_limited_emitted = false;
  a.exhausted_emitted = false;
  a.restarted_in_incident = false;
  a.held = false;
  a.diagnosis.reset();
  a.diagnosis_at.reset();
  a.exhaust_base = 0;
  m.dirty = true;
}

double epoch(WallTime t) { return common::to_epoch_seconds(t); }

double wall_of(MonoTime t, Now now) {
  return epoch(now.wall) + std::chrono::duration<double>(t - now.mono).count();
}

MonoTime mono_of(double epoch_s, Now now) {
  return now.mono + std::chrono::duration_cast<MonoTime::duration>(
                        std::chrono::duration<double>(epoch_s - epoch(now.wall)));
}

}  // namespace trading_heal::actuator
