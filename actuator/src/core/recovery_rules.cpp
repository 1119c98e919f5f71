// The rules after a restart (rules.hpp): its result, the MainPID check after our own restart,
// the recovery grace, a diagnosis that came too late for the restart line.
#include "budget.hpp"
#include "global_incident.hpp"
#include "rules.hpp"

namespace trading_heal::actuator::rules {
namespace {

using std::chrono::duration;

void audit_late_diagnosis(Step& s, AgentState& a) {
  // Too late for the restart line (the wait ran out): audited against the incident it explains.
  auto e = event(a, proto::Action::kDiagnosisAfterRestart, true, *a.diagnosis);
  if (s.diagnosis != nullptr) {
    e.fields["source"] = s.diagnosis->source;
    e.fields["latency_seconds"] = s.diagnosis->latency_seconds;
  }
  s.out.emplace_back(std::move(e));
}

// We died between the decision and the restart (persisted RESTARTING, same MainPID now): the
// restart never happened. It stays counted in the budget, but it is no failed restart: no
// cooldown from it, and the failures counted meanwhile do not bring exhaustion closer.
void restart_interrupted(Step& s, AgentState& a) {
  auto e = event(a, proto::Action::kRestartInterrupted, false,
                 "the actuator stopped before restarting (MainPID " +
                     std::to_string(a.restart_old_pid) + " unchanged): restarting again");
  e.fields["old_pid"] = static_cast<std::int64_t>(a.restart_old_pid);
  s.out.emplace_back(std::move(e));
  a.restart_old_pid = 0;
  a.recovery_deadline.reset();
  a.ready_at = s.now.mono;
  a.retry_at.reset();
  a.last_restart = a.prev_last_restart;
  a.exhaust_base = budget::past_confirmation(s.m.policy, a);
  s.m.dirty = true;
}

void restart_ineffective(Step& s, AgentState& a) {
  const Policy& p = s.m.policy;
  ++s.m.counters.restarts_ineffective;
  a.recovery_deadline.reset();
  budget::back_off(p, a, s.m.rng);
  a.ready_at = s.now.mono;
  s.m.dirty = true;
  auto e =
      event(a, proto::Action::kRestartIneffective, false,
            "not healthy within " +
                std::to_string(
                    std::chrono::duration_cast<std::chrono::seconds>(p.recovery_grace).count()) +
                "s of the restart");
  e.fields["backoff_level"] = static_cast<std::int64_t>(a.backoff_level);
  e.fields["backoff_seconds"] = duration<double>(a.backoff_wait).count();
  const GlobalIncident& g = s.m.global;
  const bool canary =
      g.active && g.canary == a.spec.instance && g.stage == GlobalIncident::Stage::kCanaryTesting;
  if (canary) e.fields["canary"] = true;
  s.out.emplace_back(std::move(e));
  if (canary) global_incident::escalate(s, "canary " + a.spec.instance + " did not recover");
}

}  // namespace

const Guard kNoDecisionSinceRestart{
    [](const Step& s, const AgentState& a) {
      const auto* r = s.report;
      return r != nullptr && a.last_restart && r->decision_age_seconds &&
             duration<double>(*r->decision_age_seconds) >=
                 duration<double>(s.now.mono - *a.last_restart);
    },
    "no_decision_since_restart",
    "alive but its newest decision predates the restart (bootstrapping): not recovered yet"};
// A report read between the restart's stop and its start (the probe's cycle met the unit
// inactive) can arrive after the restart was verified. Its unit last became active before the
// restart was issued: that is the old run's stop, not an operator's. The restart's wall time is
// taken on this host's one clock (now.wall less the time since), as systemd stamps activations.
const Guard kStoppedBeforeRestart{
    [](const Step& s, const AgentState& a) {
      const auto* r = s.report;
      if (r == nullptr || !a.last_restart || !r->active_enter_ts) return false;
      const auto restart_wall =
          duration<double>((s.now.wall - (s.now.mono - *a.last_restart)).time_since_epoch());
      return *r->active_enter_ts < restart_wall.count();
    },
    "stopped_before_restart",
    "read between the restart's stop and start (last active since before the restart): stale"};
const Guard kLateDiagnosis{[](const Step&, const AgentState& a) {
                             return a.restarted_in_incident && a.diagnosis.has_value();
                           },
                           "late_diagnosis", "the incident's restart already went without it"};
const Guard kGraceOver{[](const Step& s, const AgentState& a) {
                         return a.recovery_deadline && s.now.mono >= *a.recovery_deadline;
                       },
                       "grace_over", "the recovery grace after the restart ran out"};

const Action kAuditLateDiagnosis{&audit_late_diagnosis, "audit_late_diagnosis",
                                 "audit `diagnosis_after_restart`"};
const Action kWatchRecovery{
    [](Step& s, AgentState& a) {
      const RestartResult& r = *s.result;
      a.restart_old_pid = 0;
      ++s.m.counters.restarts_ok;
      a.recovery_deadline = s.now.mono + s.m.policy.recovery_grace;
      auto e = event(a, proto::Action::kRestart, true, r.detail);
      e.fields["dry_run"] = r.dry_run;
      e.fields["old_pid"] = static_cast<std::int64_t>(r.old_pid);
      e.fields["new_pid"] = static_cast<std::int64_t>(r.new_pid);
      e.fields["elapsed_seconds"] = r.elapsed_seconds;
      e.fields["reset_failed"] = r.reset_failed;
      e.fields["restarts_hour"] =
          static_cast<std::int64_t>(budget::in_window(s.m.policy, a, s.now.mono));
      if (s.m.global.active && s.m.global.canary == a.spec.instance) e.fields["canary"] = true;
      s.out.emplace_back(std::move(e));
      s.m.dirty = true;
    },
    "watch_recovery", "audit `restart`; recovery_deadline = now + recovery_grace"};
const Action kRetryAfterCooldown{
    [](Step& s, AgentState& a) {
      const RestartResult& r = *s.result;
      a.restart_old_pid = 0;
      ++s.m.counters.restarts_failed;
      a.ready_at = s.now.mono;
      a.retry_at = s.now.mono + s.m.policy.cooldown;
      auto e = event(a, proto::Action::kRestartFailed, false, r.detail);
      e.fields["dry_run"] = r.dry_run;
      e.fields["elapsed_seconds"] = r.elapsed_seconds;
      s.out.emplace_back(std::move(e));
      s.m.dirty = true;
      if (s.m.global.active && s.m.global.canary == a.spec.instance) {
        global_incident::escalate(s, "canary restart failed: " + r.detail);
      }
    },
    "retry_after_cooldown",
    "audit `restart_failed`; retry after the cooldown (the canary's: hold the global incident)"};
const Action kRefundRestart{
    [](Step& s, AgentState& a) {
      // The pre-restart hook said "not now": the restart never happened, so it costs no budget.
      a.restart_old_pid = 0;
      ++s.m.counters.restarts_deferred;
      budget::refund(a);
      a.ready_at = s.now.mono;
      a.retry_at = s.now.mono + s.m.policy.cooldown;
      s.out.emplace_back(event(a, proto::Action::kDeferred, false, s.result->detail));
      s.m.dirty = true;
    },
    "refund_restart", "audit `deferred`; the restart costs no budget; retry after the cooldown"};
const Action kRestartConfirmed{[](Step& s, AgentState& a) {
                                 a.restart_old_pid = 0;  // it did happen
                                 s.m.dirty = true;
                               },
                               "restart_confirmed", "forget the old MainPID"};
const Action kRestartInterrupted{&restart_interrupted, "restart_interrupted",
                                 "audit `restart_interrupted`; restart again at once (still "
                                 "counted, no cooldown, no exhaustion from it)"};
const Action kRestartIneffective{&restart_ineffective, "restart_ineffective",
                                 "audit `restart_ineffective`; back off (the canary's: hold the "
                                 "global incident)"};
const Action kWatchRecoveryAfterReload{
    [](Step& s, AgentState& a) {
      // A restart in flight when we died may or may not have happened: it was counted, so
      // watch for recovery as if it had.
      a.recovery_deadline = s.now.mono + s.m.policy.recovery_grace;
    },
    "watch_recovery_after_reload", "recovery_deadline = now + recovery_grace"};
}  // namespace trading_heal::actuator::rules
