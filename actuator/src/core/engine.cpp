// The incident state machine, limits and correlation (see engine.hpp).
#include "trading_heal/actuator/engine.hpp"

#include "trading_heal/proto/codec.hpp"

#include <algorithm>
#include <cmath>

namespace trading_heal::actuator {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

constexpr std::string_view kPhaseNames[] = {"HEALTHY",    "FAILING",   "DIAGNOSING", "RESTARTING",
                                            "RECOVERING", "EXHAUSTED", "STOPPED"};

bool failing(proto::Verdict v) {
  return v == proto::Verdict::kDown || v == proto::Verdict::kStalled;
}

std::string label(const common::AgentSpec& s) {
  return s.profile.empty() || s.profile == "default" ? s.symbol : s.symbol + "/" + s.profile;
}

double epoch(WallTime t) { return common::to_epoch_seconds(t); }

// Monotonic <-> wall conversions through the same instant `now`.
double wall_of(MonoTime t, Now now) {
  return epoch(now.wall) + std::chrono::duration<double>(t - now.mono).count();
}
MonoTime mono_of(double epoch_s, Now now) {
  return now.mono + duration_cast<MonoTime::duration>(
                        std::chrono::duration<double>(epoch_s - epoch(now.wall)));
}

void keep_min(std::optional<MonoTime>& acc, std::optional<MonoTime> t) {
  if (t && (!acc || *t < *acc)) acc = t;
}

}  // namespace

std::string_view to_string(Phase p) { return kPhaseNames[static_cast<int>(p)]; }

std::optional<Phase> phase_from_string(std::string_view s) {
  for (int i = 0; i < 7; ++i) {
    if (kPhaseNames[i] == s) return static_cast<Phase>(i);
  }
  return std::nullopt;
}

std::string_view to_string(GlobalIncident::Stage s) {
  switch (s) {
    case GlobalIncident::Stage::kCanaryPending:
      return "canary_pending";
    case GlobalIncident::Stage::kCanaryTesting:
      return "canary_testing";
    case GlobalIncident::Stage::kReleasing:
      return "releasing";
    case GlobalIncident::Stage::kHeld:
      return "held";
  }
  return "?";
}

std::string reason_for(const proto::HealthReport& r) {
  if (r.verdict == proto::Verdict::kStalled) {
    if (!r.decision_age_seconds) return "stalled";
    return "stalled (age=" + std::to_string(std::llround(*r.decision_age_seconds)) + "s)";
  }
  if (r.verdict == proto::Verdict::kDown) {
    if (r.active_state.empty()) return "down";
    std::string s = "down (" + r.active_state + (r.sub_state.empty() ? "" : "/" + r.sub_state);
    // An inactive unit with a clean result is DOWN only when nobody stopped it (the probe's
    // detail says so): the restart line tells it from a crash.
    if (r.detail.find("exited on its own") != std::string::npos) {
      s += ", exited on its own (status=0)";
    }
    return s + ")";
  }
  return std::string(proto::to_string(r.verdict));
}

std::string restart_log_line(const common::AgentSpec& spec, const std::string& reason,
                             const std::optional<std::string>& diagnosis) {
  return "SELF-HEAL: restarting " + label(spec) + " | reason: " + reason +
         " | Ollama: " + (diagnosis && !diagnosis->empty() ? *diagnosis : "unavailable");
}

Engine::Engine(const std::vector<common::AgentSpec>& agents, Policy policy, std::uint64_t seed)
    : policy_(policy), rng_(seed) {
  for (const auto& spec : agents) {
    AgentState a;
    a.spec = spec;
    a.spec.unit = common::unit_for(spec.instance);  // never anything else
    agents_.push_back(std::move(a));
  }
}

AgentState* Engine::find(const std::string& instance) {
  for (auto& a : agents_) {
    if (a.spec.instance == instance) return &a;
  }
  return nullptr;
}

const AgentState* Engine::agent(const std::string& instance) const {
  for (const auto& a : agents_) {
    if (a.spec.instance == instance) return &a;
  }
  return nullptr;
}

proto::Event Engine::event(const AgentState& a, proto::Action action, bool success,
                           std::string detail) const {
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

bool Engine::fresh(const AgentState& a, MonoTime now) const {
  return a.last_report && now - *a.last_report <= 3 * policy_.interval;
}

void Engine::prune(AgentState& a, MonoTime now) const {
  while (!a.restarts.empty() && now - a.restarts.front() >= policy_.window) a.restarts.pop_front();
}

int Engine::restarts_in_window(const AgentState& a, MonoTime now) const {
  return static_cast<int>(std::count_if(a.restarts.begin(), a.restarts.end(),
                                        [&](MonoTime t) { return now - t < policy_.window; }));
}

int Engine::fleet_restarts_in_window(MonoTime now) const {
  int n = 0;
  for (const auto& a : agents_) n += restarts_in_window(a, now);
  return n;
}

void Engine::close_incident(AgentState& a) {
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
  dirty_ = true;
}

// ---- inputs ----------------------------------------------------------------------------------

Decisions Engine::on_health(const proto::HealthReport& r, Now now) {
  Decisions out;
  AgentState* a = find(r.agent);
  if (a == nullptr) {
    ++counters_.rejected_unknown_agent;
    return out;
  }
  if (!r.unit.empty() && r.unit != a->spec.unit) {
    ++counters_.rejected_unit_mismatch;
    return out;
  }
  ++counters_.health_reports;
  a->last_report = now.mono;
  a->last_verdict = r.verdict;
  a->consecutive = r.consecutive_failures;
  a->active_state = r.active_state;
  a->sub_state = r.sub_state;
  a->result = r.result;
  a->main_pid = r.main_pid;
  a->systemd_busy = r.sub_state == "auto-restart" || r.active_state == "activating";
  if (a->phase == Phase::kRecovering && a->restart_old_pid != 0 && r.main_pid != 0) {
    if (r.main_pid == a->restart_old_pid && failing(r.verdict)) {
      interrupted(*a, now, out);
    } else if (r.main_pid != a->restart_old_pid) {
      a->restart_old_pid = 0;  // it did happen
      dirty_ = true;
    }
  }
  switch (r.verdict) {
    case proto::Verdict::kHealthy:
      on_healthy(*a, r, now, out);
      break;
    case proto::Verdict::kDown:
    case proto::Verdict::kStalled:
      a->reason = reason_for(r);
      on_failing(*a, now, out);
      break;
    case proto::Verdict::kStopped:
      // An operator's clean stop: never restarted; whatever incident was open ends here.
      if (a->phase != Phase::kRestarting) {
        if (a->phase != Phase::kStopped) close_incident(*a);
        a->phase = Phase::kStopped;
        a->healthy_since.reset();
      }
      break;
    case proto::Verdict::kUnknown:
      break;  // no facts: never a trigger, and it changes nothing already decided
  }
  check_global_close(now);
  return out;
}

// We died between the decision and the restart (persisted RESTARTING, same MainPID now): the
// restart never happened. It stays counted in the budget, but it is no failed restart: no
// cooldown from it, and the failures counted meanwhile do not bring exhaustion closer.
void Engine::interrupted(AgentState& a, Now now, Decisions& out) {
  auto e = event(a, proto::Action::kRestartInterrupted, false,
                 "the actuator stopped before restarting (MainPID " +
                     std::to_string(a.restart_old_pid) + " unchanged): restarting again");
  e.fields["old_pid"] = static_cast<std::int64_t>(a.restart_old_pid);
  out.emplace_back(std::move(e));
  a.restart_old_pid = 0;
  a.phase = Phase::kDiagnosing;
  a.recovery_deadline.reset();
  a.ready_at = now.mono;
  a.retry_at.reset();
  a.last_restart = a.prev_last_restart;
  a.exhaust_base =
      a.consecutive - std::min<std::uint32_t>(
                          a.consecutive, static_cast<std::uint32_t>(policy_.consecutive_threshold));
  dirty_ = true;
}

void Engine::on_healthy(AgentState& a, const proto::HealthReport& r, Now now, Decisions& out) {
  if (a.phase == Phase::kRestarting) return;  // the report may predate our restart
  // Alive is not recovered: a restarted agent is HEALTHY during its bootstrap (the probe's
  // startup grace) before it has decided anything. Recovered means a decision newer than the
  // restart; until then it stays RECOVERING, and past the recovery grace the restart was
  // ineffective. (An agent restarted by us and stalled again must not count as healed.)
  if (a.phase == Phase::kRecovering && a.last_restart && r.decision_age_seconds &&
      std::chrono::duration<double>(*r.decision_age_seconds) >=
          std::chrono::duration<double>(now.mono - *a.last_restart)) {
    return;
  }
  if (!a.healthy_since || a.phase != Phase::kHealthy) a.healthy_since = now.mono;
  if (a.phase != Phase::kHealthy && a.phase != Phase::kStopped && a.phase != Phase::kFailing) {
    auto e = event(a, proto::Action::kRecovered, true,
                   a.restarted_in_incident ? "healthy after restart" : "healthy without restart");
    if (a.incident_start) {
      e.fields["seconds_to_healthy"] =
          std::chrono::duration<double>(now.mono - *a.incident_start).count();
    }
    e.fields["restarted"] = a.restarted_in_incident;
    out.emplace_back(std::move(e));
  }
  const bool was_canary = global_.active && global_.canary == a.spec.instance;
  const bool was_member = global_.active && global_.members.count(a.spec.instance) > 0;
  if (a.phase != Phase::kHealthy) close_incident(a);
  a.phase = Phase::kHealthy;
  a.reason.clear();
  if (was_canary && global_.stage == GlobalIncident::Stage::kCanaryTesting) {
    global_.stage = GlobalIncident::Stage::kReleasing;
    dirty_ = true;
  }
  if (was_member && global_.stage == GlobalIncident::Stage::kReleasing) release_next(now, out);
  // Stable long enough: forget the backoff.
  if (a.backoff_level > 0 && now.mono - *a.healthy_since >= policy_.stable_after) {
    a.backoff_level = 0;
    a.backoff_wait = milliseconds(0);
    dirty_ = true;
  }
}

void Engine::on_failing(AgentState& a, Now now, Decisions& out) {
  a.healthy_since.reset();
  if (a.phase == Phase::kHealthy || a.phase == Phase::kStopped) {
    a.phase = Phase::kFailing;
    a.incident_start = now.mono;
    a.unhealthy_since = now.mono;
    a.incident = a.spec.instance + "-" + std::to_string(std::llround(epoch(now.wall)));
    // A diagnosis that came shortly before belongs to this incident; an old one does not.
    if (a.diagnosis_at &&
        now.mono - *a.diagnosis_at > policy_.diagnosis_wait + 2 * policy_.interval) {
      a.diagnosis.reset();
      a.diagnosis_at.reset();
    }
    dirty_ = true;
    check_global_open(now, "agents", out);
  }
  if (global_.active && global_.members.insert(a.spec.instance).second) dirty_ = true;
  if (a.phase == Phase::kRestarting || a.phase == Phase::kRecovering ||
      a.phase == Phase::kExhausted) {
    return;  // waiting for the restart's result, its grace period, or an operator
  }
  if (a.phase == Phase::kFailing &&
      static_cast<int>(a.consecutive) >= policy_.consecutive_threshold) {
    a.phase = Phase::kDiagnosing;
    // The diagnosis was asked at the incident's first failed check: the restart waits for it
    // until diagnosis_wait after that, not after the confirmation.
    a.ready_at =
        a.diagnosis
            ? now.mono
            : std::max(now.mono, a.incident_start.value_or(now.mono) + policy_.diagnosis_wait);
    dirty_ = true;
  }
  if (a.phase == Phase::kDiagnosing && now.mono >= *a.ready_at &&
      (!a.retry_at || now.mono >= *a.retry_at)) {
    attempt(a, now, out);
  }
}

Decisions Engine::on_probe_heartbeat(const proto::Heartbeat& hb, Now now) {
  Decisions out;
  auto it = hb.stats.find("db_reachable");
  if (it == hb.stats.end()) return out;
  const bool* reachable = std::get_if<bool>(&it->second);
  if (reachable == nullptr) return out;
  db_unreachable_ = !*reachable;
  if (db_unreachable_) {
    check_global_open(now, "database_unreachable", out);
  } else {
    check_global_close(now);
  }
  return out;
}

Decisions Engine::on_diagnosis(const proto::Diagnosis& d, Now now, bool* accepted) {
  Decisions out;
  AgentState* a = find(d.agent);
  if (accepted != nullptr) *accepted = a != nullptr;
  if (a == nullptr) {
    ++counters_.rejected_unknown_agent;
    return out;
  }
  ++counters_.diagnoses;
  // The diagnosis annotates; it never picks the target or widens the action (policy decides).
  // Its cause is kept, logged, persisted and published with every state: bounded here, whatever
  // the sender sent.
  std::string cause =
      d.cause.size() > kMaxCauseBytes
          ? proto::sanitize_utf8(std::string_view(d.cause).substr(0, kMaxCauseBytes)) + "…"
          : d.cause;
  a->diagnosis = cause.empty() ? std::optional<std::string>() : cause;
  a->diagnosis_at = now.mono;
  if (!cause.empty()) a->last_diagnosis = cause;
  // Too late for the restart line (the wait ran out): audited against the incident it explains.
  if (a->restarted_in_incident && !cause.empty() &&
      (a->phase == Phase::kRestarting || a->phase == Phase::kRecovering)) {
    auto e = event(*a, proto::Action::kDiagnosisAfterRestart, true, cause);
    e.diagnosis = cause;
    e.fields["source"] = d.source;
    e.fields["latency_seconds"] = d.latency_seconds;
    out.emplace_back(std::move(e));
  }
  if (a->phase == Phase::kDiagnosing && a->diagnosis && a->ready_at && now.mono < *a->ready_at) {
    a->ready_at = now.mono;
    if (failing(a->last_verdict) && fresh(*a, now.mono) &&
        (!a->retry_at || now.mono >= *a->retry_at)) {
      attempt(*a, now, out);
    }
  }
  return out;
}

CommandResult Engine::on_command(const proto::Command& c, Now now) {
  CommandResult res;
  ++counters_.commands;
  if (c.verb == proto::CommandVerb::kStatus) {
    if (!c.agent.empty() && find(c.agent) == nullptr) {
      ++counters_.rejected_unknown_agent;
      res.detail = "unknown agent";
      return res;
    }
    nlohmann::json s = status_json(now);
    if (!c.agent.empty()) s = s["agents"][c.agent];
    res.ok = true;
    res.detail = s.dump();
    return res;
  }
  if (c.verb != proto::CommandVerb::kPause && c.verb != proto::CommandVerb::kResume) {
    res.detail = "unsupported verb " + std::string(proto::to_string(c.verb));
    return res;
  }
  AgentState* a = find(c.agent);
  if (a == nullptr) {
    ++counters_.rejected_unknown_agent;
    res.detail = "unknown agent";
    return res;
  }
  if (c.verb == proto::CommandVerb::kPause) {
    if (c.until && (!std::isfinite(*c.until) || *c.until <= epoch(now.wall))) {
      res.detail = "pause expiry lies in the past";
      return res;
    }
    a->paused = true;
    a->pause_until =
        c.until ? std::optional<WallTime>(common::from_epoch_seconds(*c.until)) : std::nullopt;
    a->pause_reason = c.reason;
    auto e = event(*a, proto::Action::kPaused, true, "healing paused by operator");
    e.reason = c.reason;
    e.fields["until"] = c.until.value_or(0.0);
    if (!c.request_id.empty()) e.fields["request_id"] = c.request_id;
    res.decisions.emplace_back(std::move(e));
  } else {
    a->paused = false;
    a->pause_until.reset();
    a->pause_reason.clear();
    if (a->phase == Phase::kExhausted) {  // the operator takes it from here: restarts allowed
      a->phase = Phase::kDiagnosing;
      a->exhaust_base = a->consecutive;
      a->exhausted_emitted = false;
      a->ready_at = now.mono;
    }
    a->held = false;
    global_.members.erase(a->spec.instance);
    a->retry_at = now.mono;  // look again at the next tick
    auto e = event(*a, proto::Action::kResumed, true, "healing resumed by operator");
    e.reason = c.reason;
    if (!c.request_id.empty()) e.fields["request_id"] = c.request_id;
    res.decisions.emplace_back(std::move(e));
  }
  dirty_ = true;
  res.ok = true;
  res.detail =
      std::string(c.verb == proto::CommandVerb::kPause ? "paused " : "resumed ") + a->spec.instance;
  return res;
}

Decisions Engine::on_restart_result(const RestartResult& r, Now now) {
  Decisions out;
  AgentState* a = find(r.agent);
  if (a == nullptr || a->phase != Phase::kRestarting) return out;
  dirty_ = true;
  a->restart_old_pid = 0;
  const bool canary = global_.active && global_.canary == a->spec.instance;
  switch (r.outcome) {
    case Outcome::kRestarted: {
      ++counters_.restarts_ok;
      a->phase = Phase::kRecovering;
      a->recovery_deadline = now.mono + policy_.recovery_grace;
      auto e = event(*a, proto::Action::kRestart, true, r.detail);
      e.fields["dry_run"] = r.dry_run;
      e.fields["old_pid"] = static_cast<std::int64_t>(r.old_pid);
      e.fields["new_pid"] = static_cast<std::int64_t>(r.new_pid);
      e.fields["elapsed_seconds"] = r.elapsed_seconds;
      e.fields["reset_failed"] = r.reset_failed;
      e.fields["restarts_hour"] = static_cast<std::int64_t>(restarts_in_window(*a, now.mono));
      if (canary) e.fields["canary"] = true;
      out.emplace_back(std::move(e));
      break;
    }
    case Outcome::kFailed: {
      ++counters_.restarts_failed;
      a->phase = Phase::kDiagnosing;
      a->ready_at = now.mono;
      a->retry_at = now.mono + policy_.cooldown;
      auto e = event(*a, proto::Action::kRestartFailed, false, r.detail);
      e.fields["dry_run"] = r.dry_run;
      e.fields["elapsed_seconds"] = r.elapsed_seconds;
      out.emplace_back(std::move(e));
      if (canary) escalate(now, "canary restart failed: " + r.detail, out);
      break;
    }
    case Outcome::kDeferred: {
      // The pre-restart hook said "not now": the restart never happened, so it costs no budget.
      ++counters_.restarts_deferred;
      if (!a->restarts.empty()) a->restarts.pop_back();
      a->last_restart = a->prev_last_restart;
      a->phase = Phase::kDiagnosing;
      a->ready_at = now.mono;
      a->retry_at = now.mono + policy_.cooldown;
      out.emplace_back(event(*a, proto::Action::kDeferred, false, r.detail));
      break;
    }
  }
  return out;
}

Decisions Engine::on_tick(Now now) {
  Decisions out;
  for (auto& a : agents_) {
    if (a.paused && a.pause_until && now.wall >= *a.pause_until) {
      a.paused = false;
      a.pause_until.reset();
      a.pause_reason.clear();
      a.retry_at = now.mono;
      dirty_ = true;
      out.emplace_back(event(a, proto::Action::kResumed, true, "pause expired"));
    }
    if (a.phase == Phase::kRecovering && a.recovery_deadline && now.mono >= *a.recovery_deadline) {
      ++counters_.restarts_ineffective;
      a.recovery_deadline.reset();
      a.backoff_level = std::min(a.backoff_level + 1, 30);
      // cooldown * 2^level, capped, lengthened by jitter so that agents do not move in step.
      const double base = std::min<double>(
          static_cast<double>(policy_.cooldown.count()) * std::ldexp(1.0, a.backoff_level),
          static_cast<double>(policy_.backoff_max.count()));
      std::uniform_real_distribution<double> u(0.0, policy_.jitter);
      const double wait = std::min(base * (1.0 + u(rng_)),
                                   std::max(static_cast<double>(policy_.backoff_max.count()),
                                            static_cast<double>(policy_.cooldown.count())));
      a.backoff_wait = milliseconds(static_cast<std::int64_t>(wait));
      a.phase = Phase::kDiagnosing;
      a.ready_at = now.mono;
      dirty_ = true;
      auto e = event(
          a, proto::Action::kRestartIneffective, false,
          "not healthy within " +
              std::to_string(duration_cast<std::chrono::seconds>(policy_.recovery_grace).count()) +
              "s of the restart");
      e.fields["backoff_level"] = static_cast<std::int64_t>(a.backoff_level);
      e.fields["backoff_seconds"] = std::chrono::duration<double>(a.backoff_wait).count();
      const bool canary = global_.active && global_.canary == a.spec.instance &&
                          global_.stage == GlobalIncident::Stage::kCanaryTesting;
      if (canary) e.fields["canary"] = true;
      out.emplace_back(std::move(e));
      if (canary) escalate(now, "canary " + a.spec.instance + " did not recover", out);
    }
    if (a.phase == Phase::kHealthy && a.backoff_level > 0 && a.healthy_since &&
        now.mono - *a.healthy_since >= policy_.stable_after) {
      a.backoff_level = 0;
      a.backoff_wait = milliseconds(0);
      dirty_ = true;
    }
    if (a.phase == Phase::kDiagnosing && a.ready_at && now.mono >= *a.ready_at &&
        (!a.retry_at || now.mono >= *a.retry_at) && !a.held) {
      if (failing(a.last_verdict) && fresh(a, now.mono)) {
        attempt(a, now, out);
      } else {
        a.retry_at = now.mono + policy_.interval;  // no current facts: wait for a report
      }
    }
  }
  if (global_.active && global_.stage == GlobalIncident::Stage::kReleasing) {
    bool busy = false;
    for (const auto& a : agents_) {
      busy = busy || (global_.members.count(a.spec.instance) > 0 &&
                      (a.phase == Phase::kRestarting || a.phase == Phase::kRecovering));
    }
    if (!busy) release_next(now, out);
  }
  check_global_close(now);
  return out;
}

// ---- the decision to restart -----------------------------------------------------------------

void Engine::attempt(AgentState& a, Now now, Decisions& out) {
  // Every way out without a restart leaves a retry time in the future, so that the loop never
  // spins on a deadline that has passed; reports re-evaluate sooner anyway.
  a.retry_at = now.mono + policy_.interval;
  if (a.paused) return;
  if (a.systemd_busy) {
    // systemd's own Restart= is already on it: the two never act on the same crash.
    ++counters_.left_to_systemd;
    return;
  }
  if (!global_allows(a, now, out)) return;
  // Exhausted means restarts did not help: never before a first restart (failures counted while
  // waiting for a diagnosis, or before this actuator started, are not failed restarts).
  if (static_cast<int>(a.consecutive - std::min(a.consecutive, a.exhaust_base)) >=
          policy_.exhausted_after &&
      (a.restarted_in_incident || restarts_in_window(a, now.mono) > 0)) {
    a.phase = Phase::kExhausted;
    dirty_ = true;
    if (!a.exhausted_emitted) {
      a.exhausted_emitted = true;
      ++counters_.exhausted;
      auto e = event(a, proto::Action::kExhausted, false,
                     std::to_string(a.consecutive) +
                         " consecutive failures: no more restarts until healthy or resumed");
      e.fields["consecutive_failures"] = static_cast<std::int64_t>(a.consecutive);
      out.emplace_back(std::move(e));
    }
    return;
  }
  prune(a, now.mono);
  std::optional<MonoTime> until;
  std::string limit;
  bool never = false;
  if (static_cast<int>(a.restarts.size()) >= policy_.max_restarts) {
    limit = "max_restarts";
    if (a.restarts.empty()) {
      never = true;
    } else {
      until = a.restarts.front() + policy_.window;
    }
  } else if (fleet_restarts_in_window(now.mono) >= policy_.fleet_max_restarts) {
    limit = "fleet_max_restarts";
    std::optional<MonoTime> oldest;
    for (const auto& o : agents_) {
      for (auto t : o.restarts) {
        if (now.mono - t < policy_.window && (!oldest || t < *oldest)) oldest = t;
      }
    }
    if (oldest) {
      until = *oldest + policy_.window;
    } else {
      never = true;
    }
  } else if (a.last_restart) {
    const auto wait = std::max<milliseconds>(policy_.cooldown, a.backoff_wait);
    if (now.mono < *a.last_restart + wait) {
      limit = a.backoff_wait > policy_.cooldown ? "backoff" : "cooldown";
      until = *a.last_restart + wait;
    }
  }
  if (until || never) {
    // Looked at again every interval, not only when the limit lifts: an agent that stays broken
    // meanwhile must still be declared exhausted (the event is emitted once either way).
    a.retry_at =
        until ? std::min(*until, now.mono + policy_.interval) : now.mono + policy_.interval;
    if (!a.rate_limited_emitted) {
      a.rate_limited_emitted = true;
      ++counters_.rate_limited;
      auto e = event(a, proto::Action::kRateLimited, false, "restart blocked by " + limit);
      e.fields["limit"] = limit;
      e.fields["restarts_hour"] = static_cast<std::int64_t>(a.restarts.size());
      if (until) e.fields["retry_at"] = wall_of(*until, now);
      out.emplace_back(std::move(e));
      dirty_ = true;
    }
    return;
  }

  if (policy_.dry_run) {
    // What would happen, without changing what will: no restart recorded, so no budget used,
    // no backoff, never exhausted. Told again after a cooldown while the agent stays failing.
    a.retry_at = now.mono + std::max<milliseconds>(policy_.cooldown, policy_.interval);
    ++counters_.would_restart;
    auto e = event(a, proto::Action::kWouldRestart, true,
                   "dry run: " + restart_log_line(a.spec, a.reason, a.diagnosis));
    if (a.diagnosis) e.diagnosis = a.diagnosis;
    e.fields["dry_run"] = true;
    out.emplace_back(std::move(e));
    return;
  }
  RestartDecision d;
  d.agent = a.spec.instance;
  d.unit = common::unit_for(a.spec.instance);
  d.reason = a.reason;
  d.diagnosis = a.diagnosis;
  d.log_line = restart_log_line(a.spec, a.reason, a.diagnosis);
  d.reset_failed = a.active_state == "failed" || a.result == "start-limit-hit";
  d.old_pid = a.main_pid;
  a.restart_old_pid = a.main_pid;
  d.incident = a.incident;
  d.canary = global_.active && global_.canary == a.spec.instance;
  a.retry_at.reset();
  a.phase = Phase::kRestarting;
  a.prev_last_restart = a.last_restart;
  a.last_restart = now.mono;
  a.restarts.push_back(now.mono);
  a.restarted_in_incident = true;
  ++counters_.restarts_issued;
  dirty_ = true;
  out.emplace_back(std::move(d));
}

// ---- correlation -----------------------------------------------------------------------------

void Engine::check_global_open(Now now, const std::string& cause, Decisions& out) {
  if (global_.active) return;
  std::set<std::string> recent;
  for (const auto& a : agents_) {
    if (failing(a.last_verdict) && a.unhealthy_since &&
        now.mono - *a.unhealthy_since <= policy_.global_window) {
      recent.insert(a.spec.instance);
    }
  }
  const bool db = cause == "database_unreachable";
  if (!db && static_cast<int>(recent.size()) < policy_.global_min_agents) return;
  global_ = GlobalIncident{};
  global_.active = true;
  global_.cause = cause;
  global_.opened = now.mono;
  global_.id = "global-" + std::to_string(std::llround(epoch(now.wall)));
  for (const auto& a : agents_) {
    if (failing(a.last_verdict) && a.phase != Phase::kHealthy && a.phase != Phase::kStopped) {
      global_.members.insert(a.spec.instance);
    }
  }
  // An agent already being restarted is the canary: never a second one.
  for (const auto& a : agents_) {
    if (a.phase == Phase::kRestarting || a.phase == Phase::kRecovering) {
      global_.canary = a.spec.instance;
      global_.stage = GlobalIncident::Stage::kCanaryTesting;
      break;
    }
  }
  ++counters_.global_incidents;
  dirty_ = true;
  proto::Event e;
  e.action = proto::name(proto::Action::kGlobalIncident);
  e.success = false;
  e.reason =
      db ? "database unreachable"
         : std::to_string(recent.size()) + " agents unhealthy within " +
               std::to_string(duration_cast<std::chrono::seconds>(policy_.global_window).count()) +
               "s";
  e.detail = "one global incident: at most one canary restart, the rest held";
  std::string names;
  for (const auto& m : global_.members) names += (names.empty() ? "" : ",") + m;
  e.fields["agents"] = names;
  e.fields["cause"] = cause;
  e.fields["incident"] = global_.id;
  if (!global_.canary.empty()) e.fields["canary"] = global_.canary;
  out.emplace_back(std::move(e));
}

bool Engine::global_allows(AgentState& a, Now now, Decisions& out) {
  (void)now;
  (void)out;
  if (!global_.active) return true;
  global_.members.insert(a.spec.instance);
  auto hold = [&] {
    if (!a.held) {
      a.held = true;
      ++counters_.held;
    }
    return false;
  };
  switch (global_.stage) {
    case GlobalIncident::Stage::kCanaryPending:
      global_.canary = a.spec.instance;
      global_.stage = GlobalIncident::Stage::kCanaryTesting;
      dirty_ = true;
      a.held = false;
      return true;
    case GlobalIncident::Stage::kCanaryTesting:
      if (global_.canary == a.spec.instance) return true;
      return hold();
    case GlobalIncident::Stage::kReleasing:
      for (const auto& o : agents_) {
        if (&o != &a && global_.members.count(o.spec.instance) > 0 &&
            (o.phase == Phase::kRestarting || o.phase == Phase::kRecovering)) {
          return hold();  // one at a time
        }
      }
      if (a.held) {
        // Failures counted while we held it back are ours, not failed restarts: they do not
        // count towards exhaustion.
        a.exhaust_base =
            a.consecutive -
            std::min<std::uint32_t>(a.consecutive,
                                    static_cast<std::uint32_t>(policy_.consecutive_threshold));
        a.held = false;
      }
      return true;
    case GlobalIncident::Stage::kHeld:
      return hold();
  }
  return false;
}

void Engine::release_next(Now now, Decisions& out) {
  for (auto& a : agents_) {
    if (a.held && a.phase == Phase::kDiagnosing && failing(a.last_verdict) && fresh(a, now.mono)) {
      attempt(a, now, out);
      if (a.phase == Phase::kRestarting) return;
    }
  }
}

void Engine::escalate(Now now, const std::string& why, Decisions& out) {
  global_.stage = GlobalIncident::Stage::kHeld;
  dirty_ = true;
  // Escalation is recorded on the canary's own event (restart_ineffective / restart_failed)
  // and in the state; the `global_incident` audit event stays one per incident.
  (void)now;
  for (auto& e : out) {
    if (auto* ev = std::get_if<proto::Event>(&e)) {
      if (ev->agent == global_.canary &&
          (ev->action == proto::to_string(proto::Action::kRestartIneffective) ||
           ev->action == proto::to_string(proto::Action::kRestartFailed))) {
        ev->fields["global_incident"] = global_.id;
        ev->fields["escalated"] = true;
        ev->detail += "; global incident held: " + why;
      }
    }
  }
}

void Engine::check_global_close(Now now) {
  (void)now;
  if (!global_.active || db_unreachable_) return;
  for (const auto& a : agents_) {
    if (global_.members.count(a.spec.instance) > 0 && a.phase != Phase::kHealthy &&
        a.phase != Phase::kStopped) {
      return;
    }
  }
  for (auto& a : agents_) a.held = false;
  global_ = GlobalIncident{};
  dirty_ = true;
}

// ---- deadlines, state, persistence -----------------------------------------------------------

std::optional<MonoTime> Engine::next_deadline(Now now) const {
  std::optional<MonoTime> next;
  for (const auto& a : agents_) {
    if (a.paused && a.pause_until) keep_min(next, mono_of(epoch(*a.pause_until), now));
    if (a.phase == Phase::kRecovering) keep_min(next, a.recovery_deadline);
    if (a.phase == Phase::kDiagnosing && !a.held && !a.paused) {
      std::optional<MonoTime> t = a.ready_at;
      if (t && a.retry_at && *a.retry_at > *t) t = a.retry_at;
      keep_min(next, t);
    }
    if (a.phase == Phase::kHealthy && a.backoff_level > 0 && a.healthy_since) {
      keep_min(next, *a.healthy_since + policy_.stable_after);
    }
  }
  return next;
}

std::vector<proto::Event> Engine::agent_states(Now now) const {
  std::vector<proto::Event> out;
  out.reserve(agents_.size());
  for (const auto& a : agents_) out.push_back(state_event(a, now));
  return out;
}

std::optional<proto::Event> Engine::agent_state(const std::string& instance, Now now) const {
  for (const auto& a : agents_) {
    if (a.spec.instance == instance) return state_event(a, now);
  }
  return std::nullopt;
}

proto::Event Engine::state_event(const AgentState& a, Now now) const {
  proto::Event e = event(a, proto::Action::kAgentState, true, "");
  e.fields["state"] = a.paused ? std::string("PAUSED") : std::string(to_string(a.phase));
  e.fields["phase"] = std::string(to_string(a.phase));
  e.fields["paused"] = a.paused;
  e.fields["pause_until"] = a.pause_until ? epoch(*a.pause_until) : 0.0;
  e.fields["restarts_hour"] = static_cast<std::int64_t>(restarts_in_window(a, now.mono));
  e.fields["last_restart_ts"] = a.last_restart ? wall_of(*a.last_restart, now) : 0.0;
  e.fields["incident_start_ts"] = a.incident_start ? wall_of(*a.incident_start, now) : 0.0;
  e.fields["last_diagnosis"] = a.last_diagnosis;
  e.fields["consecutive_failures"] = static_cast<std::int64_t>(a.consecutive);
  e.fields["held"] = a.held;
  e.fields["global_incident"] = global_.active && global_.members.count(a.spec.instance) > 0;
  return e;
}

nlohmann::json Engine::status_json(Now now) const {
  nlohmann::json agents = nlohmann::json::object();
  for (const auto& a : agents_) {
    auto opt = [&](const std::optional<MonoTime>& t) -> nlohmann::json {
      return t ? nlohmann::json(wall_of(*t, now)) : nlohmann::json(nullptr);
    };
    agents[a.spec.instance] = {
        {"symbol", a.spec.symbol},
        {"profile", a.spec.profile},
        {"unit", a.spec.unit},
        {"state", a.paused ? "PAUSED" : std::string(to_string(a.phase))},
        {"phase", std::string(to_string(a.phase))},
        {"verdict", std::string(proto::to_string(a.last_verdict))},
        {"consecutive_failures", a.consecutive},
        {"paused", a.paused},
        {"pause_until",
         a.pause_until ? nlohmann::json(epoch(*a.pause_until)) : nlohmann::json(nullptr)},
        {"pause_reason", a.pause_reason},
        {"restarts_hour", restarts_in_window(a, now.mono)},
        {"last_restart_ts", opt(a.last_restart)},
        {"incident", a.incident},
        {"incident_start_ts", opt(a.incident_start)},
        {"reason", a.reason},
        {"last_diagnosis",
         a.last_diagnosis.empty() ? nlohmann::json(nullptr) : nlohmann::json(a.last_diagnosis)},
        {"backoff_level", a.backoff_level},
        {"held", a.held}};
  }
  nlohmann::json g = nullptr;
  if (global_.active) {
    g = {{"id", global_.id},
         {"cause", global_.cause},
         {"stage", std::string(to_string(global_.stage))},
         {"canary", global_.canary},
         {"members", std::vector<std::string>(global_.members.begin(), global_.members.end())}};
  }
  return {{"agents", agents},
          {"global_incident", g},
          {"fleet_restarts_hour", fleet_restarts_in_window(now.mono)}};
}

nlohmann::json Engine::to_json(Now now) const {
  auto opt = [&](const std::optional<MonoTime>& t) -> nlohmann::json {
    return t ? nlohmann::json(wall_of(*t, now)) : nlohmann::json(nullptr);
  };
  nlohmann::json agents = nlohmann::json::object();
  for (const auto& a : agents_) {
    std::vector<double> restarts;
    for (auto t : a.restarts) restarts.push_back(wall_of(t, now));
    agents[a.spec.instance] = {
        {"phase", std::string(to_string(a.phase))},
        {"consecutive", a.consecutive},
        {"exhaust_base", a.exhaust_base},
        {"reason", a.reason},
        {"incident", a.incident},
        {"incident_start", opt(a.incident_start)},
        {"rate_limited_emitted", a.rate_limited_emitted},
        {"exhausted_emitted", a.exhausted_emitted},
        {"restarted_in_incident", a.restarted_in_incident},
        {"diagnosis", a.diagnosis ? nlohmann::json(*a.diagnosis) : nlohmann::json(nullptr)},
        {"last_diagnosis", a.last_diagnosis},
        {"restart_old_pid", a.restart_old_pid},
        {"restarts", restarts},
        {"last_restart", opt(a.last_restart)},
        {"backoff_level", a.backoff_level},
        {"backoff_wait_ms", a.backoff_wait.count()},
        {"healthy_since", opt(a.healthy_since)},
        {"paused", a.paused},
        {"pause_until",
         a.pause_until ? nlohmann::json(epoch(*a.pause_until)) : nlohmann::json(nullptr)},
        {"pause_reason", a.pause_reason}};
  }
  nlohmann::json g = nullptr;
  if (global_.active) {
    g = {{"id", global_.id},
         {"cause", global_.cause},
         {"stage", std::string(to_string(global_.stage))},
         {"canary", global_.canary},
         {"opened", opt(global_.opened)},
         {"members", std::vector<std::string>(global_.members.begin(), global_.members.end())}};
  }
  return {{"version", 1}, {"saved_at", epoch(now.wall)}, {"agents", agents}, {"global", g}};
}

tl::expected<void, std::string> Engine::load_json(const nlohmann::json& j, Now now) {
  std::vector<AgentState> next = agents_;
  GlobalIncident g;
  try {
    if (!j.is_object() || j.at("version").get<int>() != 1)
      return tl::unexpected(std::string("unknown version"));
    auto opt = [&](const nlohmann::json& v) -> std::optional<MonoTime> {
      if (v.is_null()) return std::nullopt;
      return mono_of(v.get<double>(), now);
    };
    for (const auto& [name, s] : j.at("agents").items()) {
      AgentState* a = nullptr;
      for (auto& c : next) {
        if (c.spec.instance == name) a = &c;
      }
      if (a == nullptr) continue;  // no longer configured
      auto phase = phase_from_string(s.at("phase").get<std::string>());
      if (!phase) return tl::unexpected("agent " + name + ": unknown phase");
      a->consecutive = s.at("consecutive").get<std::uint32_t>();
      a->exhaust_base = s.at("exhaust_base").get<std::uint32_t>();
      a->reason = s.at("reason").get<std::string>();
      a->incident = s.at("incident").get<std::string>();
      a->incident_start = opt(s.at("incident_start"));
      a->rate_limited_emitted = s.at("rate_limited_emitted").get<bool>();
      a->exhausted_emitted = s.at("exhausted_emitted").get<bool>();
      a->restarted_in_incident = s.at("restarted_in_incident").get<bool>();
      if (!s.at("diagnosis").is_null()) a->diagnosis = s.at("diagnosis").get<std::string>();
      a->last_diagnosis =
          s.value("last_diagnosis", a->diagnosis.value_or(""));  // older files lack it
      a->restart_old_pid = s.value("restart_old_pid", 0U);
      a->restarts.clear();
      for (const auto& t : s.at("restarts")) {
        MonoTime m = mono_of(t.get<double>(), now);
        if (now.mono - m < policy_.window) a->restarts.push_back(m);
      }
      std::sort(a->restarts.begin(), a->restarts.end());
      a->last_restart = opt(s.at("last_restart"));
      a->backoff_level = s.at("backoff_level").get<int>();
      a->backoff_wait = milliseconds(s.at("backoff_wait_ms").get<std::int64_t>());
      a->healthy_since = opt(s.at("healthy_since"));
      a->paused = s.at("paused").get<bool>();
      if (!s.at("pause_until").is_null()) {
        a->pause_until = common::from_epoch_seconds(s.at("pause_until").get<double>());
      }
      a->pause_reason = s.at("pause_reason").get<std::string>();
      // A restart in flight when we died may or may not have happened: it was counted, so
      // watch for recovery as if it had.
      switch (*phase) {
        case Phase::kRestarting:
        case Phase::kRecovering:
          a->phase = Phase::kRecovering;
          a->recovery_deadline = now.mono + policy_.recovery_grace;
          break;
        case Phase::kFailing:
        case Phase::kDiagnosing:
          a->phase = Phase::kFailing;  // the next report decides again, with its fresh count
          break;
        default:
          a->phase = *phase;
      }
    }
    if (!j.at("global").is_null()) {
      const auto& s = j.at("global");
      g.active = true;
      g.id = s.at("id").get<std::string>();
      g.cause = s.at("cause").get<std::string>();
      g.canary = s.at("canary").get<std::string>();
      g.opened = opt(s.at("opened"));
      for (const auto& m : s.at("members")) g.members.insert(m.get<std::string>());
      const auto stage = s.at("stage").get<std::string>();
      g.stage = GlobalIncident::Stage::kCanaryPending;
      for (auto st : {GlobalIncident::Stage::kCanaryTesting, GlobalIncident::Stage::kReleasing,
                      GlobalIncident::Stage::kHeld}) {
        if (to_string(st) == stage) g.stage = st;
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return tl::unexpected(std::string("bad state: ") + e.what());
  }
  agents_ = std::move(next);
  global_ = std::move(g);
  return {};
}

}  // namespace trading_heal::actuator
