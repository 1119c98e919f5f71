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

class StatusModel {
 public:
  // `interval`: the components' default interval (a Heartbeat's interval_seconds wins).
  // `start`: when the exporter started — a component never heard from gets 3 intervals of grace.
  StatusModel(const std::vector<common::AgentSpec>& agents, common::Seconds interval,
              common::MonoTime start);

  void on_health(const proto::HealthReport& r, double ts, common::MonoTime now);
  // An `agent_state` event from the actuator (state, not audit).
  void on_agent_state(const proto::Event& e, double ts);
  // Any message from `component`; `interval_seconds` > 0 when it says how often it speaks.
  void on_component(const std::string& component, double interval_seconds, common::MonoTime now);
  void set_global_incident(bool active) { global_incident_ = active; }

  std::vector<std::string> silent_components(common::MonoTime now) const;
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
  AgentState& agent(const std::string& instance);

  std::map<std::string, AgentState> agents_;  // by instance
  std::vector<std::string> order_;            // configured first, then as first seen
  std::map<std::string, Component> components_;
  common::Seconds interval_;
  common::MonoTime start_;
  bool global_incident_ = false;
};

}  // namespace trading_heal::exporter
