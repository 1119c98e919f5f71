// Operator commands (units.hpp): status, pause, resume. A pause is a flag beside the phase: a
// paused agent is watched as usual and never restarted (the `paused` gate of the restart
// decision); a resume also lifts EXHAUSTED (the table's `resume` row).
#include <cmath>

#include "global_incident.hpp"
#include "units.hpp"

namespace trading_heal::actuator::commands {
namespace {

void clear_pause(AgentState& a) {
  a.paused = false;
  a.pause_until.reset();
  a.pause_reason.clear();
}

CommandResult status(Model& m, const proto::Command& c, Now now) {
  CommandResult res;
  if (!c.agent.empty() && m.find(c.agent) == nullptr) {
    ++m.counters.rejected_unknown_agent;
    res.detail = "unknown agent";
    return res;
  }
  nlohmann::json s = status::to_json(m, now);
  if (!c.agent.empty()) s = s["agents"][c.agent];
  res.ok = true;
  res.detail = s.dump();
  return res;
}

bool pause(AgentState& a, const proto::Command& c, Now now, CommandResult& res) {
  if (c.until && (!std::isfinite(*c.until) || *c.until <= epoch(now.wall))) {
    res.detail = "pause expiry lies in the past";
    return false;
  }
  a.paused = true;
  a.pause_until =
      c.until ? std::optional<WallTime>(common::from_epoch_seconds(*c.until)) : std::nullopt;
  a.pause_reason = c.reason;
  auto e = event(a, proto::Action::kPaused, true, "healing paused by operator");
  e.reason = c.reason;
  e.fields["until"] = c.until.value_or(0.0);
  if (!c.request_id.empty()) e.fields["request_id"] = c.request_id;
  res.decisions.emplace_back(std::move(e));
  return true;
}

void resume(Model& m, AgentState& a, const proto::Command& c, Now now, CommandResult& res) {
  clear_pause(a);
  Step s{m, now, res.decisions};
  fire(s, a, Event::kResume);
  a.held = false;
  m.global.members.erase(a.spec.instance);
  a.retry_at = now.mono;  // look again at the next tick
  auto e = event(a, proto::Action::kResumed, true, "healing resumed by operator");
  e.reason = c.reason;
  if (!c.request_id.empty()) e.fields["request_id"] = c.request_id;
  res.decisions.emplace_back(std::move(e));
}

}  // namespace

CommandResult handle(Model& m, const proto::Command& c, Now now) {
  ++m.counters.commands;
  if (c.verb == proto::CommandVerb::kStatus) return status(m, c, now);
  CommandResult res;
  if (c.verb != proto::CommandVerb::kPause && c.verb != proto::CommandVerb::kResume) {
    res.detail = "unsupported verb " + std::string(proto::to_string(c.verb));
    return res;
  }
  AgentState* a = m.find(c.agent);
  if (a == nullptr) {
    ++m.counters.rejected_unknown_agent;
    res.detail = "unknown agent";
    return res;
  }
  if (c.verb == proto::CommandVerb::kPause) {
    if (!pause(*a, c, now, res)) return res;
  } else {
    resume(m, *a, c, now, res);
  }
  m.dirty = true;
  res.ok = true;
  res.detail =
      std::string(c.verb == proto::CommandVerb::kPause ? "paused " : "resumed ") + a->spec.instance;
  return res;
}

void expire_pause(Step& s, AgentState& a) {
  if (!a.paused || !a.pause_until || s.now.wall < *a.pause_until) return;
  clear_pause(a);
  a.retry_at = s.now.mono;
  s.m.dirty = true;
  s.out.emplace_back(event(a, proto::Action::kResumed, true, "pause expired"));
}

}  // namespace trading_heal::actuator::commands
