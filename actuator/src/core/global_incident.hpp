// The global incident: several agents failing together (or the decisions database unreachable)
// are one incident with one canary restart; the others are held, then released one at a time
// once the canary recovered, or held for good when it did not.
#pragma once

#include <string>

#include "step.hpp"

namespace trading_heal::actuator::global_incident {

// Opens one when enough agents turned unhealthy within the window (cause "agents") or the
// database is unreachable (cause "database_unreachable"); audited once.
void maybe_open(Step& s, const std::string& cause);
// Closes it once the database is reachable and no member is unhealthy.
void close_if_over(Model& m);
void join(Model& m, const AgentState& a);  // a failing agent while one is open
void on_heartbeat(Step& s, bool db_reachable);

// Whether `a` must wait: not the canary while it is tested, another member being restarted,
// or held for good. Pure; hold() and admit() make it so.
bool holds(const Model& m, const AgentState& a);
void hold(Model& m, AgentState& a);
void admit(Model& m, AgentState& a);  // may make `a` the canary

void on_healthy(Step& s, const AgentState& a);  // a member (the canary) is healthy again
void on_tick(Step& s);
// The canary did not recover: hold everything, noted on its event in `s.out`.
void escalate(Step& s, const std::string& why);

}  // namespace trading_heal::actuator::global_incident
