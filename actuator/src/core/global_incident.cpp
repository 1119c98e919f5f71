// The global incident and its canary (global_incident.hpp).
#include "global_incident.hpp"

#include <cmath>
#include <set>

#include "budget.hpp"

namespace trading_heal::actuator {

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

namespace global_incident {
namespace {

using Stage = GlobalIncident::Stage;

bool busy(const AgentState& a) {
  return a.phase == Phase::kRestarting || a.phase == Phase::kRecovering;
}

// The agents that turned unhealthy within the correlation window.
std::set<std::string> recent_failures(const Model& m, MonoTime now) {
  std::set<std::string> recent;
  for (const auto& a : m.agents) {
    if (failing(a.last_verdict) && a.unhealthy_since &&
        now - *a.unhealthy_since <= m.policy.global_window) {
      recent.insert(a.spec.instance);
    }
  }
  return recent;
}

void audit_opened(Step& s, std::size_t recent) {
  const GlobalIncident& g = s.m.global;
  proto::Event e;
  e.action = proto::name(proto::Action::kGlobalIncident);
  e.success = false;
  e.reason = g.cause == "database_unreachable"
                 ? "database unreachable"
                 : std::to_string(recent) + " agents unhealthy within " +
                       std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                          s.m.policy.global_window)
                                          .count()) +
                       "s";
  e.detail = "one global incident: at most one canary restart, the rest held";
  std::string names;
  for (const auto& m : g.members) names += (names.empty() ? "" : ",") + m;
  e.fields["agents"] = names;
  e.fields["cause"] = g.cause;
  e.fields["incident"] = g.id;
  if (!g.canary.empty()) e.fields["canary"] = g.canary;
  s.out.emplace_back(std::move(e));
}

// Fires `released` for the held agents in turn until one is being restarted.
void release_next(Step& s) {
  for (auto& a : s.m.agents) {
    if (fire(s, a, Event::kReleased) && a.phase == Phase::kRestarting) return;
  }
}

}  // namespace

void maybe_open(Step& s, const std::string& cause) {
  Model& m = s.m;
  if (m.global.active) return;
  const auto recent = recent_failures(m, s.now.mono);
  const bool db = cause == "database_unreachable";
  if (!db && static_cast<int>(recent.size()) < m.policy.global_min_agents) return;
  m.global = GlobalIncident{};
  m.global.active = true;
  m.global.cause = cause;
  m.global.opened = s.now.mono;
  m.global.id = "global-" + std::to_string(std::llround(epoch(s.now.wall)));
  for (const auto& a : m.agents) {
    if (failing(a.last_verdict) && a.phase != Phase::kHealthy && a.phase != Phase::kStopped) {
      m.global.members.insert(a.spec.instance);
    }
  }
  // An agent already being restarted is the canary: never a second one.
  for (const auto& a : m.agents) {
    if (busy(a)) {
      m.global.canary = a.spec.instance;
      m.global.stage = Stage::kCanaryTesting;
      break;
    }
  }
  ++m.counters.global_incidents;
  m.dirty = true;
  audit_opened(s, recent.size());
}

void close_if_over(Model& m) {
  if (!m.global.active || m.db_unreachable) return;
  for (const auto& a : m.agents) {
    if (m.global.members.count(a.spec.instance) > 0 && a.phase != Phase::kHealthy &&
        a.phase != Phase::kStopped) {
      return;
    }
  }
  for (auto& a : m.agents) a.held = false;
  m.global = GlobalIncident{};
  m.dirty = true;
}

void join(Model& m, const AgentState& a) {
  if (m.global.active && m.global.members.insert(a.spec.instance).second) m.dirty = true;
}

void on_heartbeat(Step& s, bool db_reachable) {
  s.m.db_unreachable = !db_reachable;
  if (s.m.db_unreachable) {
    maybe_open(s, "database_unreachable");
  } else {
    close_if_over(s.m);
  }
}

bool holds(const Model& m, const AgentState& a) {
  const GlobalIncident& g = m.global;
  if (!g.active) return false;
  switch (g.stage) {
    case Stage::kCanaryPending:
      return false;  // `a` becomes the canary
    case Stage::kCanaryTesting:
      return g.canary != a.spec.instance;
    case Stage::kReleasing:
      for (const auto& o : m.agents) {
        if (&o != &a && g.members.count(o.spec.instance) > 0 && busy(o)) return true;
      }
      return false;  // one at a time
    case Stage::kHeld:
      return true;
  }
  return true;
}

void hold(Model& m, AgentState& a) {
  if (m.global.active) m.global.members.insert(a.spec.instance);
  if (!a.held) {
    a.held = true;
    ++m.counters.held;
  }
}

void admit(Model& m, AgentState& a) {
  GlobalIncident& g = m.global;
  if (!g.active) {
    // Held by the centre's order, which no longer holds: the failures counted meanwhile were
    // not failed restarts either.
    if (a.held) a.exhaust_base = budget::past_confirmation(m.policy, a);
    a.held = false;
    return;
  }
  g.members.insert(a.spec.instance);
  if (g.stage == Stage::kCanaryPending) {
    g.canary = a.spec.instance;
    g.stage = Stage::kCanaryTesting;
    m.dirty = true;
    a.held = false;
  } else if (g.stage == Stage::kReleasing && a.held) {
    // Failures counted while we held it back are ours, not failed restarts: they do not count
    // towards exhaustion.
    a.exhaust_base = budget::past_confirmation(m.policy, a);
    a.held = false;
  }
}

void on_healthy(Step& s, const AgentState& a) {
  GlobalIncident& g = s.m.global;
  if (!g.active) return;
  if (g.canary == a.spec.instance && g.stage == Stage::kCanaryTesting) {
    g.stage = Stage::kReleasing;
    s.m.dirty = true;
  }
  if (g.members.count(a.spec.instance) > 0 && g.stage == Stage::kReleasing) release_next(s);
}

void on_tick(Step& s) {
  const GlobalIncident& g = s.m.global;
  if (!g.active || g.stage != Stage::kReleasing) return;
  for (const auto& a : s.m.agents) {
    if (g.members.count(a.spec.instance) > 0 && busy(a)) return;
  }
  release_next(s);
}

void escalate(Step& s, const std::string& why) {
  GlobalIncident& g = s.m.global;
  g.stage = Stage::kHeld;
  s.m.dirty = true;
  // Recorded on the canary's own event (restart_ineffective / restart_failed) and in the state;
  // the `global_incident` audit event stays one per incident.
  for (auto& d : s.out) {
    auto* ev = std::get_if<proto::Event>(&d);
    if (ev != nullptr && ev->agent == g.canary &&
        (ev->action == proto::to_string(proto::Action::kRestartIneffective) ||
         ev->action == proto::to_string(proto::Action::kRestartFailed))) {
      ev->fields["global_incident"] = g.id;
      ev->fields["escalated"] = true;
      ev->detail += "; global incident held: " + why;
    }
  }
}

}  // namespace global_incident
}  // namespace trading_heal::actuator
