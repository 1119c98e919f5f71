// The incident's guards and actions (rules.hpp) up to the restart: reports, diagnoses, ticks,
// a resume (recovery_rules.cpp has those after it).
#include <algorithm>
#include <cmath>

#include "budget.hpp"
#include "global_incident.hpp"
#include "rules.hpp"

namespace trading_heal::actuator::rules {
namespace {

using std::chrono::duration;

bool due(const Step& s, const AgentState& a) {
  return a.ready_at && s.now.mono >= *a.ready_at && (!a.retry_at || s.now.mono >= *a.retry_at);
}
bool current(const Step& s, const AgentState& a) {
  return failing(a.last_verdict) && fresh(s.m.policy, a, s.now.mono);
}
bool early_diagnosis(const Step& s, const AgentState& a) {
  return a.diagnosis && a.ready_at && s.now.mono < *a.ready_at;
}
bool early_with_facts(const Step& s, const AgentState& a) {
  return early_diagnosis(s, a) && current(s, a) && (!a.retry_at || s.now.mono >= *a.retry_at);
}

// Every way into HEALTHY ends here: the failure is over, the global incident hears of it, and
// a long enough health forgets the backoff.
void settle_healthy(Step& s, AgentState& a) {
  a.reason.clear();
  global_incident::on_healthy(s, a);
  if (budget::stable(s.m.policy, a, s.now.mono)) {
    budget::forget_backoff(a);
    s.m.dirty = true;
  }
}

void open_incident(Step& s, AgentState& a) {
  const Policy& p = s.m.policy;
  a.incident_start = s.now.mono;
  a.unhealthy_since = s.now.mono;
  a.incident = a.spec.instance + "-" + std::to_string(std::llround(epoch(s.now.wall)));
  // A diagnosis that came shortly before belongs to this incident; an old one does not.
  if (a.diagnosis_at && s.now.mono - *a.diagnosis_at > p.diagnosis_wait + 2 * p.interval) {
    a.diagnosis.reset();
    a.diagnosis_at.reset();
  }
  s.m.dirty = true;
  global_incident::maybe_open(s, "agents");
}

void await_diagnosis(Step& s, AgentState& a) {
  // The diagnosis was asked at the incident's first failed check: the restart waits for it
  // until diagnosis_wait after that, not after the confirmation.
  const MonoTime now = s.now.mono;
  a.ready_at =
      a.diagnosis ? now : std::max(now, a.incident_start.value_or(now) + s.m.policy.diagnosis_wait);
  s.m.dirty = true;
}

void end_incident(Step& s, AgentState& a) {
  close_incident(s.m, a);
  a.healthy_since.reset();
}

void stay_healthy(Step& s, AgentState& a) {
  if (!a.healthy_since) a.healthy_since = s.now.mono;
  settle_healthy(s, a);
}

void healthy_again(Step& s, AgentState& a) {
  a.healthy_since = s.now.mono;
  close_incident(s.m, a);
  settle_healthy(s, a);
}

void recovered(Step& s, AgentState& a) {
  a.healthy_since = s.now.mono;
  auto e = event(a, proto::Action::kRecovered, true,
                 a.restarted_in_incident ? "healthy after restart" : "healthy without restart");
  if (a.incident_start) {
    e.fields["seconds_to_healthy"] = duration<double>(s.now.mono - *a.incident_start).count();
  }
  e.fields["restarted"] = a.restarted_in_incident;
  s.out.emplace_back(std::move(e));
  close_incident(s.m, a);
  settle_healthy(s, a);
}

void lift_exhaustion(Step& s, AgentState& a) {
  // The operator takes it from here: restarts allowed again.
  a.exhaust_base = a.consecutive;
  a.exhausted_emitted = false;
  a.ready_at = s.now.mono;
}

}  // namespace

const Guard kConfirmed{[](const Step& s, const AgentState& a) {
                         return static_cast<int>(a.consecutive) >= s.m.policy.consecutive_threshold;
                       },
                       "confirmed", "consecutive failures >= consecutive_threshold"};
const Guard kDue{&due, "due",
                 "the diagnosis wait is over (ready_at) and no retry time is pending (retry_at)"};
const Guard kDueWithFacts{
    [](const Step& s, const AgentState& a) { return due(s, a) && !a.held && current(s, a); },
    "due_with_facts", "due, not held by the global incident, a fresh failing report"};
const Guard kDueWithoutFacts{
    [](const Step& s, const AgentState& a) { return due(s, a) && !a.held && !current(s, a); },
    "due_without_facts", "due, not held, but no fresh failing report (UNKNOWN or silent)"};
const Guard kEarlyDiagnosisWithFacts{&early_with_facts, "early_diagnosis_with_facts",
                                     "a diagnosis before the wait ran out, a fresh failing report, "
                                     "no retry time pending"};
const Guard kEarlyDiagnosisWithoutFacts{
    [](const Step& s, const AgentState& a) {
      return early_diagnosis(s, a) && !early_with_facts(s, a);
    },
    "early_diagnosis_without_facts",
    "a diagnosis before the wait ran out, nothing to restart on now"};
const Guard kStable{
    [](const Step& s, const AgentState& a) { return budget::stable(s.m.policy, a, s.now.mono); },
    "stable", "backed off, and healthy for stable_after"};
const Guard kHeldWithFacts{
    [](const Step& s, const AgentState& a) { return a.held && current(s, a); }, "held_with_facts",
    "held back by the global incident, still failing"};

const Action kOpenIncident{&open_incident, "open_incident",
                           "a new incident id; an old diagnosis forgotten; may open the global "
                           "incident"};
const Action kAwaitDiagnosis{&await_diagnosis, "await_diagnosis",
                             "ready_at: now with a diagnosis, else diagnosis_wait after the first "
                             "failed check"};
const Action kRestartSooner{[](Step& s, AgentState& a) { a.ready_at = s.now.mono; },
                            "restart_sooner", "ready_at = now"};
const Action kEndIncident{&end_incident, "end_incident",
                          "the incident is closed: never restarted while stopped"};
const Action kStayHealthy{
    &stay_healthy, "stay_healthy",
    "healthy_since kept; the global incident told; stable: backoff forgotten"};
const Action kHealthyAgain{&healthy_again, "healthy_again",
                           "the incident closed without `recovered` (nothing was restarted)"};
const Action kRecovered{&recovered, "recovered",
                        "audit `recovered`, close the incident, tell the global incident (the "
                        "canary recovered: release the next)"};
const Action kLiftExhaustion{&lift_exhaustion, "lift_exhaustion",
                             "the failures so far are forgiven; ready_at = now"};
const Action kForgetBackoff{[](Step& s, AgentState& a) {
                              budget::forget_backoff(a);
                              s.m.dirty = true;
                            },
                            "forget_backoff", "backoff level and wait back to 0"};

}  // namespace trading_heal::actuator::rules
