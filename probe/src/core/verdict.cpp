// The verdict table: unit state x process x decision age -> HEALTHY/DOWN/STALLED/STOPPED/UNKNOWN.
#include "trading_heal/probe/verdict.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace trading_heal::probe {
namespace {

using proto::AgeSource;
using proto::Verdict;

std::string secs(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0fs", s);
  return buf;
}

void add(std::string& detail, const std::string& part) {
  if (!detail.empty()) detail += "; ";
  detail += part;
}

// The decision age and where it came from, before the startup grace.
struct Age {
  std::optional<double> value;
  AgeSource source = AgeSource::kNone;
  bool capped = false;  // value is a lower bound (older than the search window)
};

Age decision_age(const common::AgentSpec& agent, const AgeFacts& f, const VerdictPolicy& p,
                 double now, AgeMemory& memory, proto::HealthReport& r) {
  const std::string key = age_key(agent.symbol, agent.profile);
  Age age;
  // Age of a remembered newest timestamp; one in the future ages from when we first saw it.
  auto age_of = [&](const AgeMemory::Seen& seen) {
    if (seen.ts > now + p.future_tolerance_s) {
      r.clock_skew = true;
      return std::max(0.0, now - seen.first_seen);
    }
    return std::max(0.0, now - seen.ts);
  };
  switch (f.db) {
    case DbAnswer::kRow:
      age.value = age_of(memory.observe(key, f.newest_ts, now));
      age.source = AgeSource::kDb;
      break;
    case DbAnswer::kOlderThanCap:
      if (const auto* seen = memory.find(key)) {
        age.value = age_of(*seen);
      } else {
        age.value = p.age_cap_s;
        age.capped = true;
      }
      age.source = AgeSource::kDb;
      break;
    case DbAnswer::kNeverSeen:
      r.never_seen = true;
      memory.forget(key);
      break;
    case DbAnswer::kUnavailable:
      break;
  }
  if (f.heartbeat_ts) {
    double hb = now - *f.heartbeat_ts;
    if (hb < -p.future_tolerance_s) {
      r.clock_skew = true;
      hb = 0;  // cannot tell; the DB (when it answers) still can
    }
    r.heartbeat_age_seconds = std::max(0.0, hb);
    if (age.source == AgeSource::kNone && *f.heartbeat_ts <= now + p.future_tolerance_s) {
      age.value = r.heartbeat_age_seconds;
      age.source = AgeSource::kHeartbeat;
    }
  }
  return age;
}

// Unit state -> a verdict that ends the evaluation, or nullopt when the unit runs.
std::optional<Verdict> unit_verdict(const UnitFacts& u, std::string& detail) {
  if (u.load_state == "not-found") {
    add(detail, "unit not found");
    return Verdict::kDown;
  }
  if (u.active_state == "active" || u.active_state == "reloading") return std::nullopt;
  const std::string state = "unit " + u.active_state + "/" + u.sub_state;
  if (u.active_state == "inactive" && (u.result == "success" || u.result.empty())) {
    if (u.exited_unbidden) {
      add(detail, state + " exited on its own (status=0)");
      return Verdict::kDown;
    }
    add(detail, state + " (stopped cleanly)");
    return Verdict::kStopped;
  }
  if (u.active_state == "inactive" || u.active_state == "failed") {
    add(detail, state + " result=" + u.result);
    return Verdict::kDown;
  }
  if (u.active_state == "activating" && u.sub_state == "auto-restart") {
    add(detail, state + " result=" + u.result + " (systemd restarting it)");
    return Verdict::kDown;
  }
  // activating (starting) or deactivating (being stopped): a transition, not a failure.
  add(detail, state + " (in transition)");
  return Verdict::kUnknown;
}

std::optional<Verdict> process_verdict(const UnitFacts& u, const std::optional<ProcessFacts>& p,
                                       proto::HealthReport& r) {
  if (u.main_pid == 0) {
    add(r.detail, "no main process");
    return Verdict::kDown;
  }
  if (!p) {
    add(r.detail, "process not examined");
    return Verdict::kUnknown;
  }
  r.rss_bytes = p->rss_bytes;
  r.cpu_ratio = p->cpu_ratio;
  const std::string pid = "pid " + std::to_string(u.main_pid);
  if (!p->exists) {
    add(r.detail, pid + " gone");
    return Verdict::kDown;
  }
  if (p->zombie) {
    add(r.detail, pid + " is a zombie");
    return Verdict::kDown;
  }
  if (p->pattern_ok && !*p->pattern_ok) {
    add(r.detail, pid + " cmdline does not match the process pattern");
    return Verdict::kDown;
  }
  r.process_ok = true;
  return std::nullopt;
}

}  // namespace

std::string age_key(const std::string& symbol, const std::string& profile) {
  return symbol + '\x1f' + profile;
}

const AgeMemory::Seen& AgeMemory::observe(const std::string& key, double ts, double now) {
  auto [it, inserted] = seen_.try_emplace(key, Seen{ts, now});
  if (!inserted && it->second.ts != ts) {
    // An older value than we remember cannot be the newest row unless the table was rewritten;
    // trust the database.
    it->second = Seen{ts, now};
  }
  return it->second;
}

const AgeMemory::Seen* AgeMemory::find(const std::string& key) const {
  auto it = seen_.find(key);
  return it == seen_.end() ? nullptr : &it->second;
}

std::uint32_t FailureCounter::apply(const std::string& agent, proto::Verdict v) {
  auto& c = counts_[agent];
  if (v == Verdict::kDown || v == Verdict::kStalled) {
    ++c.n;
  } else if (v == Verdict::kHealthy) {
    c = Count{};
  }
  return c.n;
}

std::uint32_t FailureCounter::apply(const std::string& agent, proto::Verdict v,
                                    common::MonoTime now, common::MonoTime::duration spacing) {
  auto& c = counts_[agent];
  if (v == Verdict::kDown || v == Verdict::kStalled) {
    if (c.n == 0 || !c.last || now - *c.last >= spacing) {
      ++c.n;
      c.last = now;
    }
  } else if (v == Verdict::kHealthy) {
    c = Count{};
  }
  return c.n;
}

std::uint32_t FailureCounter::get(const std::string& agent) const {
  auto it = counts_.find(agent);
  return it == counts_.end() ? 0 : it->second.n;
}

double window_start(const AgeMemory& memory, const std::string& key, double now, double cap) {
  double start = now - cap;
  if (const auto* seen = memory.find(key)) start = std::max(start, seen->ts);
  return start;
}

namespace {

// The age the stall verdict compares with the threshold. Startup grace: an agent (re)started at
// T cannot have been stalled longer than now - T, and it gets `startup_grace_s` of bootstrap
// before its first decision. Only while it has not decided since T: a decision after T means the
// bootstrap is over and the plain age counts.
struct Effective {
  std::optional<double> value;
  std::optional<double> since_start;
  bool in_grace = false;
  std::optional<double> for_caller;  // unclamped: when the agent turns stale
};

Effective effective_age_of(const UnitFacts& u, std::optional<double> age,
                           const VerdictPolicy& policy, double now) {
  Effective e;
  if (u.active_enter_ts) e.since_start = std::max(0.0, now - *u.active_enter_ts);
  e.value = age;
  e.for_caller = age;
  if (e.since_start && (!age || *age > *e.since_start)) {
    e.value = std::max(0.0, *e.since_start - policy.startup_grace_s);
    e.in_grace = *e.since_start <= policy.startup_grace_s;
    // Still in the grace, the agent turns stale grace + threshold after its start, not
    // threshold after now.
    e.for_caller = *e.since_start - policy.startup_grace_s;
  }
  return e;
}

// The verdict from the age, once the unit and the process are fine.
Verdict age_verdict(const Age& age, const Effective& e, const VerdictPolicy& policy,
                    proto::HealthReport& r) {
  if (!age.value) {
    // Nothing tells the age: only a recent start vouches for the agent; never a failure.
    if (e.value && *e.value <= policy.stall_threshold_s) {
      r.age_ok = true;
      add(r.detail, "no decision age yet; started " + secs(*e.since_start) + " ago");
      return Verdict::kHealthy;
    }
    add(r.detail, "no source for the decision age");
    return Verdict::kUnknown;
  }
  r.age_ok = *e.value <= policy.stall_threshold_s;
  if (!r.age_ok) {
    add(r.detail, std::string("stalled (age") + (age.capped ? ">" : "=") + secs(*age.value) +
                      " source=" + std::string(proto::to_string(age.source)) + ")");
    return Verdict::kStalled;
  }
  if (e.in_grace) {
    add(r.detail, "bootstrapping (started " + secs(*e.since_start) + " ago, no decision since)");
  }
  return Verdict::kHealthy;
}

void copy_unit(const UnitFacts& u, proto::HealthReport& r) {
  r.active_state = u.active_state;
  r.sub_state = u.sub_state;
  r.result = u.result;
  r.main_pid = u.main_pid;
  r.n_restarts = u.n_restarts;
  r.active_enter_ts = u.active_enter_ts;
}

}  // namespace

proto::HealthReport evaluate(const common::AgentSpec& agent, const AgentFacts& facts,
                             const VerdictPolicy& policy, double now, AgeMemory& memory,
                             std::optional<double>* effective_age) {
  if (effective_age != nullptr) effective_age->reset();
  proto::HealthReport r;
  r.agent = agent.instance;
  r.unit = agent.unit;
  r.symbol = agent.symbol;
  r.profile = agent.profile;
  r.stall_threshold_seconds = policy.stall_threshold_s;
  r.threshold_source = policy.threshold_source;

  const Age age = decision_age(agent, facts.age, policy, now, memory, r);
  r.decision_age_seconds = age.value;
  r.age_source = age.source;
  if (r.never_seen) add(r.detail, "no decision ever recorded for this symbol/profile");
  if (r.clock_skew) add(r.detail, "decision timestamp in the future (clock skew)");

  if (!facts.unit) {
    add(r.detail, "systemd did not answer");
    r.verdict = Verdict::kUnknown;
    return r;
  }
  const UnitFacts& u = *facts.unit;
  copy_unit(u, r);
  if (auto v = unit_verdict(u, r.detail)) {
    r.verdict = *v;
    return r;
  }
  r.unit_ok = true;
  if (auto v = process_verdict(u, facts.process, r)) {
    r.verdict = *v;
    return r;
  }
  const Effective e = effective_age_of(u, age.value, policy, now);
  if (effective_age != nullptr) *effective_age = e.for_caller;
  r.verdict = age_verdict(age, e, policy, r);
  return r;
}

}  // namespace trading_heal::probe
