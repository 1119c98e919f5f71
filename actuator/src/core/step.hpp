// One input being handled by the core: the model, the time, where its decisions go and the
// message that started it; the dispatcher that fires events through the transition table; the
// small helpers every unit of the core shares. Internal to th_actuator_core.
#pragma once

#include <string>

#include "trading_heal/actuator/decisions.hpp"
#include "trading_heal/actuator/model.hpp"
#include "trading_heal/actuator/transitions.hpp"
#include "trading_heal/proto/actions.hpp"

namespace trading_heal::actuator {

struct Step {
  Model& m;
  Now now;
  Decisions& out;
  const proto::HealthReport* report = nullptr;  // the report behind a report's events
  const proto::Diagnosis* diagnosis = nullptr;  // kDiagnosis
  const RestartResult* result = nullptr;        // kRestarted, kRestartFailed, kRestartDeferred
};

// Fires `e` for `a`: the first row of (a.phase, e) whose guard holds sets the phase, runs its
// action, then fires its follow-up event. False when no row fired.
bool fire(Step& s, AgentState& a, Event e);

bool failing(proto::Verdict v);
// A report within the last three intervals: facts current enough to restart on.
bool fresh(const Policy& p, const AgentState& a, MonoTime now);
// An audit event about `a` (its reason, diagnosis and incident filled in).
proto::Event event(const AgentState& a, proto::Action action, bool success, std::string detail);
// Forgets the open incident's data (not the history, backoff or pause).
void close_incident(Model& m, AgentState& a);

double epoch(WallTime t);
// Monotonic <-> wall conversions through the same instant `now`.
double wall_of(MonoTime t, Now now);
MonoTime mono_of(double epoch_s, Now now);

}  // namespace trading_heal::actuator
