// The restart decision's guards and actions (rules.hpp): DIAGNOSING's `attempt` passes the
// gates (paused, systemd's own Restart=, the global incident), then `admitted` meets the limits
// (exhaustion, the budget, dry run) or restarts. Every way out without a restart leaves a retry
// time in the future, so that the loop never spins on a deadline that has passed.
#include <algorithm>

#include "budget.hpp"
#include "fleet_order.hpp"
#include "global_incident.hpp"
#include "rules.hpp"

namespace trading_heal::actuator::rules {
namespace {

using std::chrono::milliseconds;

void retry_later(Step& s, AgentState& a) { a.retry_at = s.now.mono + s.m.policy.interval; }

void exhaust(Step& s, AgentState& a) {
  s.m.dirty = true;
  if (a.exhausted_emitted) return;
  a.exhausted_emitted = true;
  ++s.m.counters.exhausted;
  auto e = event(a, proto::Action::kExhausted, false,
                 std::to_string(a.consecutive) +
                     " consecutive failures: no more restarts until healthy or resumed");
  e.fields["consecutive_failures"] = static_cast<std::int64_t>(a.consecutive);
  s.out.emplace_back(std::move(e));
}

void rate_limit(Step& s, AgentState& a) {
  const MonoTime now = s.now.mono;
  budget::prune(s.m.policy, a, now);
  const auto block = budget::blocked(s.m, a, now);
  if (!block) return;  // cannot happen: the guard said so
  // Looked at again every interval, not only when the limit lifts: an agent that stays broken
  // meanwhile must still be declared exhausted (the event is emitted once either way).
  a.retry_at =
      block->until ? std::min(*block->until, now + s.m.policy.interval) : now + s.m.policy.interval;
  if (a.rate_limited_emitted) return;
  a.rate_limited_emitted = true;
  ++s.m.counters.rate_limited;
  auto e = event(a, proto::Action::kRateLimited, false, "restart blocked by " + block->limit);
  e.fields["limit"] = block->limit;
  e.fields["restarts_hour"] = static_cast<std::int64_t>(a.restarts.size());
  if (block->until) e.fields["retry_at"] = wall_of(*block->until, s.now);
  s.out.emplace_back(std::move(e));
  s.m.dirty = true;
}

void would_restart(Step& s, AgentState& a) {
  // What would happen, without changing what will: no restart recorded, so no budget used,
  // no backoff, never exhausted. Told again after a cooldown while the agent stays failing.
  const Policy& p = s.m.policy;
  budget::prune(p, a, s.now.mono);
  a.retry_at = s.now.mono + std::max<milliseconds>(p.cooldown, p.interval);
  ++s.m.counters.would_restart;
  auto e = event(a, proto::Action::kWouldRestart, true,
                 "dry run: " + restart_log_line(a.spec, a.reason, a.diagnosis));
  if (a.diagnosis) e.diagnosis = a.diagnosis;
  e.fields["dry_run"] = true;
  s.out.emplace_back(std::move(e));
}

void restart(Step& s, AgentState& a) {
  budget::prune(s.m.policy, a, s.now.mono);
  RestartDecision d;
  d.agent = a.spec.instance;
  d.unit = common::unit_for(a.spec.instance);
  d.reason = a.reason;
  d.diagnosis = a.diagnosis;
  d.log_line = restart_log_line(a.spec, a.reason, a.diagnosis);
  d.reset_failed = a.active_state == "failed" || a.result == "start-limit-hit";
  d.old_pid = a.main_pid;
  d.incident = a.incident;
  d.canary = s.m.global.active && s.m.global.canary == a.spec.instance;
  a.restart_old_pid = a.main_pid;
  a.retry_at.reset();
  budget::record(a, s.now.mono);
  a.restarted_in_incident = true;
  ++s.m.counters.restarts_issued;
  s.m.dirty = true;
  s.out.emplace_back(std::move(d));
}

}  // namespace

const Guard kPaused{[](const Step&, const AgentState& a) { return a.paused; }, "paused",
                    "an operator paused healing"};
const Guard kSystemdBusy{[](const Step&, const AgentState& a) { return a.systemd_busy; },
                         "systemd_busy",
                         "systemd's own Restart= is on it (auto-restart, activating)"};
const Guard kHeldBack{
    [](const Step& s, const AgentState& a) {
      return global_incident::holds(s.m, a) || fleet_order::holds(s.m, s.now.mono);
    },
    "held_back",
    "the global incident holds it (not the canary, another member being restarted, or held for "
    "good), or the centre's order holds this host"};
const Guard kRestartsDidNotHelp{
    [](const Step& s, const AgentState& a) { return budget::exhausted(s.m.policy, a, s.now.mono); },
    "restarts_did_not_help",
    "consecutive failures (since a resume) >= exhausted_after, and a "
    "restart this incident or this window"};
const Guard kLimitReached{
    [](const Step& s, const AgentState& a) {
      return budget::blocked(s.m, a, s.now.mono).has_value();
    },
    "limit_reached", "max_restarts, fleet_max_restarts, the cooldown or the backoff blocks it"};
const Guard kDryRun{[](const Step& s, const AgentState&) { return s.m.policy.dry_run; }, "dry_run",
                    "TRADING_HEAL_DRY_RUN"};

const Action kRetryLater{&retry_later, "retry_later",
                         "retry_at = now + interval (wait for the next report)"};
const Action kLeaveToSystemd{[](Step& s, AgentState& a) {
                               retry_later(s, a);
                               ++s.m.counters.left_to_systemd;
                             },
                             "leave_to_systemd",
                             "retry later: the two never act on the same crash"};
const Action kHold{[](Step& s, AgentState& a) {
                     retry_later(s, a);
                     global_incident::hold(s.m, a);
                   },
                   "hold", "retry later, counted as held once"};
const Action kAdmit{[](Step& s, AgentState& a) {
                      retry_later(s, a);
                      global_incident::admit(s.m, a);
                    },
                    "admit",
                    "retry later unless restarted; may become the canary; released: the failures "
                    "counted while held are forgiven"};
const Action kExhaust{&exhaust, "exhaust", "audit `exhausted` (once per incident)"};
const Action kRateLimit{&rate_limit, "rate_limit",
                        "audit `rate_limited` (once per incident); retry when it lifts, at the "
                        "latest after an interval"};
const Action kWouldRestart{&would_restart, "would_restart",
                           "audit `would_restart`; no budget used; again after a cooldown"};
const Action kRestart{&restart, "restart",
                      "the RestartDecision (reset-failed first when the unit failed); counted in "
                      "the budget"};

}  // namespace trading_heal::actuator::rules
