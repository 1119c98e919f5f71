// The current state behind GET /status and GET /health: the last health report and the
// actuator's `agent_state` of every agent, and when each component was last heard from.
// Pure (time passed in); not thread-safe — the daemon guards it with a mutex (SharedStatus).
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "trading_heal/common/clock.hpp"
#include "trading_heal/common/config.hpp"
#include "trading_heal/proto/messages.hpp"

namespace trading_heal::exporter {

// Components /health expects to hear from; each sends a Heartbeat every interval.
inline const std::vector<std::string> kWatchedComponents = {"probe", "diagnoser", "actuator"};
inline constexpr int kSilentAfterIntervals = 3;
// A crash loop systemd keeps fixing: more than this many restarts of the unit by systemd itself
// within the window (TradingAgentCrashLooping says the same).
inline constexpr int kCrashLoopRestarts = 3;
inline constexpr double kCrashLoopWindowSeconds = 1800;

// Hosts: every agent and component belongs to a host (the local one: `local_host`; others as
// they are heard from, at most kMaxHosts). A host is silent when its probe is (the probe is its
// link to the centre and repeats a heartbeat every 2 s there); a silent remote host's agents are
// shown with verdict UNKNOWN and `host_up: false`, not with their last (perhaps healthy) report.
class StatusModel {
 public:
  // `interval`: the components' default interval (a Heartbeat's interval_seconds wins).
  // `start`: when the exporter started — a component never heard from gets 3 intervals of grace.
  StatusModel(const std::vector<common::AgentSpec>& agents, common::Seconds interval,
              common::MonoTime start, std::string local_host = "localhost");

  void on_health(const proto::HealthReport& r, const std::string& host, double ts,
                 common::MonoTime now);
  // An `agent_state` event from the actuator (state, not audit).
  void on_agent_state(const proto::Event& e, const std::string& host, double ts);
  // Any message from `component` of `host`; `interval_seconds` > 0 when it says how often it
  // speaks.
  void on_component(const std::string& host, const std::string& component, double interval_seconds,
                    common::MonoTime now);
  void set_global_incident(const std::string& host, bool active);
  // The same for the local host.
  void on_health(const proto::HealthReport& r, double ts, common::MonoTime now) {
    on_health(r, local_host_, ts, now);
  }
  void on_agent_state(const proto::Event& e, double ts) { on_agent_state(e, local_host_, ts); }
  void on_component(const std::string& component, double interval_seconds, common::MonoTime now) {
    on_component(local_host_, component, interval_seconds, now);
  }
  void set_global_incident(bool active) { set_global_incident(local_host_, active); }

  // The local host's silent components ("probe"), then other hosts' ("HOST/probe").
  std::vector<std::string> silent_components(common::MonoTime now) const;
  // Whether `component` of `host` was ever heard from (the local host's are always watched).
  bool heard_from(const std::string& host, const std::string& component) const {
    return components_.count({host, component}) != 0;
  }
  // Every host heard from (and the local one) with whether it is up (not silent).
  std::vector<std::pair<std::string, bool>> hosts(common::MonoTime now) const;
  // {"status":"ok"} or {"status":"degraded","silent":[...]}; `ok` tells which.
  nlohmann::json health_json(common::MonoTime now, bool* ok) const;
  nlohmann::json status_json(common::MonoTime now, double wall_now) const;
  std::size_t agent_count() const { return agents_.size(); }

 private:
  struct AgentState {
    std::string agent, symbol, profile, unit;
    std::optional<proto::HealthReport> report;
    double report_ts = 0;
    std::optional<nlohmann::json> state;  // the agent_state event's fields
    double state_ts = 0;
    std::optional<std::uint32_t> n_restarts;  // systemd's NRestarts in the last report
    std::deque<double> unit_restarts;         // report times of the restarts seen since
  };
  struct Component {
    std::optional<common::MonoTime> last;
    common::Seconds interval{0};
  };
  using Key = std::pair<std::string, std::string>;  // (host, agent or component)
  AgentState* agent(const std::string& host, const std::string& instance);
  bool silent(const Component& c, common::MonoTime now) const;
  bool host_silent(const std::string& host, common::MonoTime now) const;

  std::string local_host_;
  std::map<Key, AgentState> agents_;
  std::vector<Key> order_;  // configured first, then as first seen
  std::map<Key, Component> components_;
  std::map<std::string, bool> global_incident_;  // by host
  common::Seconds interval_;
  common::MonoTime start_;
};

}  // namespace trading_heal::exporter
