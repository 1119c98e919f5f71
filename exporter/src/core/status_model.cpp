#include "trading_heal/exporter/status_model.hpp"

#include "trading_heal/exporter/audit_format.hpp"
#include "trading_heal/exporter/metrics_model.hpp"
#include "trading_heal/proto/json.hpp"

namespace trading_heal::exporter {
namespace {

using nlohmann::json;

json opt_number(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

json state_value(const json& fields, const char* name) {
  auto it = fields.find(name);
  return it == fields.end() ? json(nullptr) : *it;
}

json epoch_iso(const json& v) {
  return v.is_number() && v.get<double>() > 0 ? json(iso8601_utc(v.get<double>())) : json(nullptr);
}

}  // namespace

StatusModel::StatusModel(const std::vector<common::AgentSpec>& agents, common::Seconds interval,
                         common::MonoTime start, std::string local_host)
    : local_host_(std::move(local_host)), interval_(interval), start_(start) {
  for (const auto& a : agents) {
    AgentState& s = *agent(local_host_, a.instance);
    s.symbol = a.symbol;
    s.profile = a.profile;
    s.unit = a.unit;
  }
  // A centre without agents of its own has no local probe, diagnoser or actuator to wait for.
  if (!agents.empty()) {
    for (const auto& c : kWatchedComponents) components_[{local_host_, c}];
  }
  global_incident_[local_host_] = false;
}

StatusModel::AgentState* StatusModel::agent(const std::string& host, const std::string& instance) {
  Key key{host, instance};
  if (auto it = agents_.find(key); it != agents_.end()) return &it->second;
  if (instance.empty() || agents_.size() >= kMaxAgents) return nullptr;
  AgentState& s = agents_[key];
  s.agent = instance;
  order_.push_back(std::move(key));
  return &s;
}

void StatusModel::on_health(const proto::HealthReport& r, const std::string& host, double ts,
                            common::MonoTime now) {
  on_component(host, "probe", 0, now);
  AgentState* found = agent(host, r.agent);
  if (found == nullptr) return;
  AgentState& s = *found;
  // Restarts of the unit by systemd itself, as they are seen (the first report's count has no
  // times: not counted); NRestarts going down is a reset (a manual start, our restart).
  if (s.n_restarts) {
    const std::uint32_t grew =
        r.n_restarts >= *s.n_restarts ? r.n_restarts - *s.n_restarts : r.n_restarts;
    for (std::uint32_t i = 0; i < grew && s.unit_restarts.size() < 1000; ++i) {
      s.unit_restarts.push_back(ts);
    }
  }
  s.n_restarts = r.n_restarts;
  while (!s.unit_restarts.empty() && s.unit_restarts.front() < ts - kCrashLoopWindowSeconds) {
    s.unit_restarts.pop_front();
  }
  s.report = r;
  s.report_ts = ts;
  if (s.symbol.empty()) s.symbol = r.symbol;
  if (s.profile.empty()) s.profile = r.profile;
  if (s.unit.empty()) s.unit = r.unit;
}

void StatusModel::on_agent_state(const proto::Event& e, const std::string& host, double ts) {
  AgentState* found = agent(host, e.agent);
  if (found == nullptr) return;
  AgentState& s = *found;
  s.state = proto::fields_to_json(e.fields);
  s.state_ts = ts;
  if (s.symbol.empty()) s.symbol = e.symbol;
}

void StatusModel::on_component(const std::string& host, const std::string& component,
                               double interval_seconds, common::MonoTime now) {
  // Only the watched components, of at most kMaxHosts hosts: the map stays bounded.
  if (std::find(kWatchedComponents.begin(), kWatchedComponents.end(), component) ==
      kWatchedComponents.end()) {
    return;
  }
  auto it = components_.find({host, component});
  if (it == components_.end()) {
    if (global_incident_.size() >= kMaxHosts && global_incident_.count(host) == 0) return;
    global_incident_.try_emplace(host, false);
    it = components_.try_emplace({host, component}).first;
  }
  it->second.last = now;
  if (interval_seconds > 0) it->second.interval = common::Seconds(interval_seconds);
}

void StatusModel::set_global_incident(const std::string& host, bool active) {
  if (auto it = global_incident_.find(host); it != global_incident_.end()) it->second = active;
}

bool StatusModel::silent(const Component& c, common::MonoTime now) const {
  const auto interval = c.interval.count() > 0 ? c.interval : interval_;
  const auto limit =
      std::chrono::duration_cast<common::MonoTime::duration>(interval * kSilentAfterIntervals);
  return now - c.last.value_or(start_) > limit;
}

std::vector<std::string> StatusModel::silent_components(common::MonoTime now) const {
  std::vector<std::string> local, others;
  for (const auto& [key, c] : components_) {
    if (!silent(c, now)) continue;
    if (key.first == local_host_) {
      local.push_back(key.second);
    } else {
      others.push_back(key.first + "/" + key.second);
    }
  }
  local.insert(local.end(), others.begin(), others.end());
  return local;
}

// A host is silent when its probe is: the probe is the host's link to the centre (its state
// link repeats a heartbeat every 2 s) and the one that checks the agents.
bool StatusModel::host_silent(const std::string& host, common::MonoTime now) const {
  auto it = components_.find({host, "probe"});
  return it == components_.end() ? host != local_host_ : silent(it->second, now);
}

std::vector<std::pair<std::string, bool>> StatusModel::hosts(common::MonoTime now) const {
  std::vector<std::pair<std::string, bool>> out;
  for (const auto& [host, incident] : global_incident_) {
    out.emplace_back(host, !host_silent(host, now));
  }
  return out;
}

json StatusModel::health_json(common::MonoTime now, bool* ok) const {
  auto silent = silent_components(now);
  if (ok != nullptr) *ok = silent.empty();
  if (silent.empty()) return json{{"status", "ok"}};
  return json{{"status", "degraded"}, {"silent", silent}};
}

namespace {

// The probe's view of one agent in /status (nulls until its first report).
void add_report(json& a, const std::optional<proto::HealthReport>& report, double report_ts,
                const std::deque<double>& unit_restarts, double wall_now) {
  if (!report) {
    a["verdict"] = nullptr;
    a["up"] = nullptr;
    a["stalled"] = nullptr;
    a["stall_threshold_seconds"] = nullptr;
    a["threshold_source"] = nullptr;
    return;
  }
  const auto& r = *report;
  const bool known_age = r.decision_age_seconds.has_value();
  a["verdict"] = proto::to_string(r.verdict);
  a["up"] = r.unit_ok && r.process_ok;
  a["stalled"] = r.verdict == proto::Verdict::kStalled || (known_age && !r.age_ok);
  a["decision_age_seconds"] = opt_number(r.decision_age_seconds);
  a["age_source"] = proto::to_string(r.age_source);
  a["heartbeat_age_seconds"] = opt_number(r.heartbeat_age_seconds);
  a["stall_threshold_seconds"] = opt_number(r.stall_threshold_seconds);
  a["threshold_source"] =
      r.stall_threshold_seconds ? json(proto::to_string(r.threshold_source)) : json(nullptr);
  a["consecutive_failures"] = r.consecutive_failures;
  a["active_state"] = r.active_state;
  a["sub_state"] = r.sub_state;
  a["main_pid"] = r.main_pid;
  a["rss_bytes"] = r.rss_bytes;
  a["cpu_ratio"] = r.cpu_ratio;
  a["detail"] = r.detail;
  a["report_ts"] = iso8601_utc(report_ts);
  a["report_age_seconds"] = wall_now - report_ts;
  const auto recent = std::count_if(unit_restarts.begin(), unit_restarts.end(), [&](double t) {
    return t >= wall_now - kCrashLoopWindowSeconds;
  });
  a["crash_loop"] = recent > kCrashLoopRestarts
                        ? json{{"restarts_30m", recent}, {"last_result", r.result}}
                        : json(nullptr);
}

// The actuator's view of one agent in /status (nulls until its first state).
void add_state(json& a, const std::optional<json>& state, double state_ts) {
  if (!state) {
    for (const char* k : {"incident_state", "paused", "pause_until", "restarts_hour",
                          "last_restart", "last_restart_ts", "incident_start", "last_diagnosis"}) {
      a[k] = nullptr;
    }
    return;
  }
  const json& f = *state;
  a["incident_state"] = state_value(f, "state");
  a["paused"] = state_value(f, "paused");
  a["pause_until"] = epoch_iso(state_value(f, "pause_until"));
  a["restarts_hour"] = state_value(f, "restarts_hour");
  a["last_restart"] = epoch_iso(state_value(f, "last_restart_ts"));
  a["last_restart_ts"] = state_value(f, "last_restart_ts");
  a["incident_start"] = epoch_iso(state_value(f, "incident_start_ts"));
  a["last_diagnosis"] = state_value(f, "last_diagnosis");
  a["state_ts"] = iso8601_utc(state_ts);
}

}  // namespace

json StatusModel::status_json(common::MonoTime now, double wall_now) const {
  std::map<std::string, bool> host_up;
  for (const auto& [host, up] : hosts(now)) host_up[host] = up;
  json agents = json::array();
  for (const auto& key : order_) {
    const AgentState& s = agents_.at(key);
    json a{{"agent", s.agent},
           {"host", key.first},
           {"symbol", s.symbol},
           {"profile", s.profile},
           {"unit", s.unit}};
    add_report(a, s.report, s.report_ts, s.unit_restarts, wall_now);
    add_state(a, s.state, s.state_ts);
    const auto up = host_up.find(key.first);
    a["host_up"] = up == host_up.end() || up->second;
    // A silent remote host's last reports are old news: not "healthy". (The local host's
    // silent probe shows in `components`, its agents' last reports stay, as with one host.)
    if (key.first != local_host_ && !a["host_up"].get<bool>()) {
      a["verdict"] = "UNKNOWN";
      a["up"] = nullptr;
      a["stalled"] = nullptr;
    }
    agents.push_back(std::move(a));
  }
  // The local host's components by name (as with one host); the others' under `hosts`.
  json comps = json::object();
  json hosts_json = json::object();
  bool any_incident = false;
  for (const auto& [host, incident] : global_incident_) {
    any_incident = any_incident || incident;
    hosts_json[host] =
        json{{"up", host_up[host]}, {"global_incident", incident}, {"components", json::object()}};
  }
  for (const auto& [key, c] : components_) {
    json j{{"up", !silent(c, now)}};
    j["last_seen_seconds_ago"] =
        c.last ? json(std::chrono::duration<double>(now - *c.last).count()) : json(nullptr);
    if (key.first == local_host_) comps[key.second] = j;
    hosts_json[key.first]["components"][key.second] = std::move(j);
  }
  return json{{"ts", iso8601_utc(wall_now)},     {"host", local_host_},
              {"global_incident", any_incident}, {"components", std::move(comps)},
              {"hosts", std::move(hosts_json)},  {"agents", std::move(agents)}};
}

}  // namespace trading_heal::exporter
