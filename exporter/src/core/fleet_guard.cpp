// The centre's fleet-wide decisions (fleet_guard.hpp).
#include "trading_heal/exporter/fleet_guard.hpp"

#include <cmath>

#include "trading_heal/proto/actions.hpp"

namespace trading_heal::exporter {
namespace {

bool failing(proto::Verdict v) {
  return v == proto::Verdict::kDown || v == proto::Verdict::kStalled;
}

bool is_up(const std::map<std::string, bool>& up, const std::string& host) {
  auto it = up.find(host);
  return it != up.end() && it->second;
}

std::string seconds_text(std::chrono::milliseconds d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + "s";
}

}  // namespace

std::string_view to_string(FleetGuard::Stage s) {
  switch (s) {
    case FleetGuard::Stage::kCanaryTesting:
      return "canary_testing";
    case FleetGuard::Stage::kReleasing:
      return "releasing";
    case FleetGuard::Stage::kHeld:
      return "held";
  }
  return "?";
}

FleetPolicy FleetPolicy::from_config(const common::Config& c) {
  FleetPolicy p;
  p.min_agents = c.global_min_agents;
  p.window = c.global_window;
  p.max_restarts = c.fleet_max_restarts;
  return p;
}

void FleetGuard::on_host_name(const std::string& host, const std::string& declared) {
  if (!declared.empty()) names_[host] = declared;
}

std::string FleetGuard::declared(const std::string& host) const {
  auto it = names_.find(host);
  return it == names_.end() ? host : it->second;
}

void FleetGuard::on_health(const std::string& host, const std::string& agent, proto::Verdict v,
                           common::MonoTime now) {
  Seen& a = agents_[{host, agent}];
  if (v == proto::Verdict::kUnknown) return;  // no facts
  if (failing(v) && !a.unhealthy_since) {
    a.unhealthy_since = now;
    a.restarted = false;
  } else if (!failing(v)) {
    a.unhealthy_since.reset();
  }
  a.verdict = v;
  if (incident_ && failing(v)) incident_->members.insert({host, agent});
}

void FleetGuard::on_agent_state(const std::string& host, const std::string& agent,
                                const std::string& state) {
  agents_[{host, agent}].busy = state == "RESTARTING" || state == "RECOVERING";
}

void FleetGuard::on_record(const std::string& host, const proto::Event& e, double ts,
                           double now_wall) {
  const auto seconds = std::chrono::duration<double>(p_.restart_window).count();
  if (e.action == proto::to_string(proto::Action::kRestart)) {
    if (now_wall - ts < seconds) {
      // In time order (records come late after an outage): the window is pruned from the front.
      auto at = restarts_.end();
      while (at != restarts_.begin() && std::prev(at)->first > ts) --at;
      restarts_.insert(at, {ts, host});
    }
    if (auto it = agents_.find({host, e.agent}); it != agents_.end()) it->second.restarted = true;
    return;
  }
  if (!incident_ || incident_->stage != Stage::kCanaryTesting || host != incident_->canary_host ||
      incident_->members.count({host, e.agent}) == 0) {
    return;
  }
  const auto it = agents_.find({host, e.agent});
  if (e.action == proto::to_string(proto::Action::kRecovered) && it != agents_.end() &&
      it->second.restarted) {
    incident_->stage = Stage::kReleasing;
    pending_.push_back(record("releasing", "canary host " + host + ": " + e.agent +
                                               " recovered after its restart; the other hosts "
                                               "may restart"));
  } else if (e.action == proto::to_string(proto::Action::kRestartIneffective) ||
             e.action == proto::to_string(proto::Action::kRestartFailed) ||
             e.action == proto::to_string(proto::Action::kExhausted)) {
    incident_->stage = Stage::kHeld;
    incident_->why = "canary host " + host + ": " + e.action + " of " + e.agent;
    pending_.push_back(record("held", incident_->why + "; every host holds until it is over"));
  }
}

bool FleetGuard::failing_on_up(const AgentKey& k, const std::map<std::string, bool>& up) const {
  auto it = agents_.find(k);
  return it != agents_.end() && failing(it->second.verdict) && is_up(up, k.first);
}

// A host already restarting a member, else the host of the member that failed first.
std::optional<std::string> FleetGuard::pick_canary(const std::map<std::string, bool>& up) const {
  std::optional<std::string> first;
  std::optional<common::MonoTime> first_at;
  for (const auto& k : incident_->members) {
    if (!failing_on_up(k, up)) continue;
    const Seen& a = agents_.at(k);
    if (a.busy || a.restarted) return k.first;
    if (a.unhealthy_since && (!first_at || *a.unhealthy_since < *first_at)) {
      first = k.first;
      first_at = a.unhealthy_since;
    }
  }
  return first;
}

void FleetGuard::open_incident(double now_wall, common::MonoTime now,
                               const std::map<std::string, bool>& up,
                               std::vector<proto::Event>& out) {
  std::set<AgentKey> recent;
  std::set<std::string> hosts;
  for (const auto& [k, a] : agents_) {
    if (failing(a.verdict) && is_up(up, k.first) && a.unhealthy_since &&
        now - *a.unhealthy_since <= p_.window) {
      recent.insert(k);
      hosts.insert(k.first);
    }
  }
  if (hosts.size() < 2 || static_cast<int>(recent.size()) < p_.min_agents) return;
  incident_ = Incident{};
  incident_->id = "fleet-" + std::to_string(std::llround(now_wall));
  for (const auto& [k, a] : agents_) {
    if (failing_on_up(k, up)) incident_->members.insert(k);
  }
  incident_->canary_host = pick_canary(up).value_or(*hosts.begin());
  out.push_back(record("canary_testing", std::to_string(recent.size()) + " agents on " +
                                             std::to_string(hosts.size()) +
                                             " hosts unhealthy within " + seconds_text(p_.window) +
                                             ": " + incident_->canary_host +
                                             " is the canary host, the others hold"));
}

void FleetGuard::follow_incident(const std::map<std::string, bool>& up,
                                 std::vector<proto::Event>& out) {
  // A member being restarted (or watched after its restart) is still in hand, though its
  // probe may call it healthy while it starts.
  bool any_open = false;
  bool canary_open = false;
  for (const auto& k : incident_->members) {
    const bool busy = is_up(up, k.first) && agents_.at(k).busy;
    if (!failing_on_up(k, up) && !busy) continue;
    any_open = true;
    canary_open = canary_open || k.first == incident_->canary_host;
  }
  if (!any_open) {
    out.push_back(record("closed", "no member is failing or being restarted on a host heard from"));
    incident_.reset();
    return;
  }
  if (incident_->stage != Stage::kCanaryTesting || canary_open) return;
  // The canary host is silent or has nothing left to restart: another host takes the role.
  const std::string before = incident_->canary_host;
  if (auto next = pick_canary(up)) {
    incident_->canary_host = *next;
    out.push_back(record("canary_testing", "canary host " + before +
                                               (is_up(up, before) ? " has no failing member left"
                                                                  : " is not heard from") +
                                               ": " + *next + " is the canary host"));
  }
}

void FleetGuard::check_breaker(double now_wall, std::vector<proto::Event>& out) {
  const auto seconds = std::chrono::duration<double>(p_.restart_window).count();
  while (!restarts_.empty() && now_wall - restarts_.front().first >= seconds) restarts_.pop_front();
  const int n = static_cast<int>(restarts_.size());
  if (n >= p_.max_restarts && !breaker_) {
    std::set<std::string> hosts;
    for (const auto& r : restarts_) hosts.insert(r.second);
    breaker_ = "fleet-breaker-" + std::to_string(std::llround(now_wall));
    breaker_reason_ = "fleet_max_restarts: " + std::to_string(n) + " restarts on " +
                      std::to_string(hosts.size()) + " hosts within " +
                      seconds_text(p_.restart_window) + " (limit " +
                      std::to_string(p_.max_restarts) + "): every host holds";
    proto::Event e = record("breaker_open", breaker_reason_);
    e.fields["incident"] = *breaker_;
    e.fields["cause"] = "fleet_max_restarts";
    out.push_back(std::move(e));
  } else if (n < p_.max_restarts && breaker_) {
    proto::Event e = record("breaker_closed", std::to_string(n) + " restarts within " +
                                                  seconds_text(p_.restart_window) + " (limit " +
                                                  std::to_string(p_.max_restarts) + ")");
    e.fields["incident"] = *breaker_;
    e.fields["cause"] = "fleet_max_restarts";
    e.success = true;
    out.push_back(std::move(e));
    breaker_.reset();
  }
}

std::vector<proto::Event> FleetGuard::decide(common::MonoTime now, double now_wall,
                                             const std::map<std::string, bool>& up) {
  std::vector<proto::Event> out = std::move(pending_);
  pending_.clear();
  check_breaker(now_wall, out);
  if (incident_) {
    follow_incident(up, out);
  } else {
    open_incident(now_wall, now, up, out);
  }
  directive_ = make_directive();
  return out;
}

FleetDirective FleetGuard::make_directive() const {
  FleetDirective d;
  if (breaker_) {
    d.hold = true;
    d.incident = *breaker_;
    d.cause = "fleet_max_restarts";
    d.reason = breaker_reason_;
    return d;
  }
  if (!incident_) return d;
  d.incident = incident_->id;
  d.cause = "agents";
  switch (incident_->stage) {
    case Stage::kCanaryTesting:
      d.hold = true;
      d.canary_host = declared(incident_->canary_host);
      d.reason = "fleet incident " + incident_->id + ": " + incident_->canary_host +
                 " is the canary host, the others hold";
      break;
    case Stage::kHeld:
      d.hold = true;
      d.reason = "fleet incident " + incident_->id + " held: " + incident_->why;
      break;
    case Stage::kReleasing:
      d.reason = "fleet incident " + incident_->id + ": the canary host recovered";
      break;
  }
  return d;
}

proto::Event FleetGuard::record(const std::string& stage, const std::string& reason) const {
  proto::Event e;
  e.action = proto::name(proto::Action::kFleetIncident);
  e.success = stage == "releasing" || stage == "closed";
  e.reason = reason;
  e.fields["stage"] = stage;
  if (incident_) {
    e.fields["incident"] = incident_->id;
    e.fields["cause"] = "agents";
    e.fields["canary_host"] = incident_->canary_host;
    std::string members;
    for (const auto& [host, agent] : incident_->members) {
      if (!members.empty()) members += ',';
      members.append(host).append("/").append(agent);
    }
    e.fields["agents"] = members;
  }
  e.detail = stage == "canary_testing" ? "one canary host restarts, every other host holds"
             : stage == "held"         ? "the canary host's restart did not help: every host holds"
             : stage == "breaker_open" ? "the fleet-wide breaker holds every host"
                                       : "the hosts decide alone again";
  return e;
}

nlohmann::json FleetGuard::to_json() const {
  if (!incident_ && !breaker_) return nullptr;
  nlohmann::json j = {{"hold", directive_.hold},
                      {"incident", directive_.incident},
                      {"cause", directive_.cause},
                      {"reason", directive_.reason}};
  if (incident_) {
    j["stage"] = std::string(to_string(incident_->stage));
    j["canary_host"] = incident_->canary_host;
    std::vector<std::string> members;
    for (const auto& [host, agent] : incident_->members) {
      members.push_back(host);
      members.back().append("/").append(agent);
    }
    j["members"] = members;
  }
  if (breaker_) j["fleet_restarts_hour"] = restarts_.size();
  return j;
}

}  // namespace trading_heal::exporter
