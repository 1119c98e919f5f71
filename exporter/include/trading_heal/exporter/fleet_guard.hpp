// Many hosts: the decisions the centre makes for all its hosts together (docs/operations.md
// "Many hosts"), from what every host tells it: its agents' health, its actuator's agent states
// and audit records.
//
// - The fleet-wide breaker: TRADING_HEAL_FLEET_MAX_RESTARTS restarts of all hosts together
//   within the hour hold every host until the oldest leaves the hour.
// - The fleet incident: TRADING_HEAL_GLOBAL_MIN_AGENTS agents on two hosts or more turned
//   unhealthy within TRADING_HEAL_GLOBAL_WINDOW are one incident with one canary host (a host
//   already restarting one of them, else the host of the first to fail): it may restart, every
//   other host holds. A canary host's member restarted and recovered releases the others; a
//   restart there that did not help holds them all until the incident is over (no member
//   failing). A canary host that falls silent or has no failing member left hands the role on.
//
// What a host does with the directive (and without it) is the actuator's fleet_order. Pure:
// time is passed in. One incident (or breaker) at a time is audited as `fleet_incident`.
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "trading_heal/common/clock.hpp"
#include "trading_heal/common/config.hpp"
#include "trading_heal/proto/messages.hpp"

namespace trading_heal::exporter {

struct FleetPolicy {
  int min_agents = 3;                       // TRADING_HEAL_GLOBAL_MIN_AGENTS
  std::chrono::milliseconds window{60000};  // TRADING_HEAL_GLOBAL_WINDOW
  int max_restarts = 10;                    // TRADING_HEAL_FLEET_MAX_RESTARTS
  std::chrono::milliseconds restart_window{std::chrono::hours(1)};
  static FleetPolicy from_config(const common::Config& c);
};

// The centre's order to every host.
struct FleetDirective {
  bool hold = false;        // every host but canary_host holds its restarts
  std::string incident;     // the incident's (or breaker's) id
  std::string cause;        // "agents" | "fleet_max_restarts" | "" (none)
  std::string canary_host;  // the host's own name (TRADING_HEAL_HOST); empty: none may restart
  std::string reason;       // for people
  bool operator==(const FleetDirective&) const = default;
};

class FleetGuard {
 public:
  enum class Stage { kCanaryTesting, kReleasing, kHeld };
  using AgentKey = std::pair<std::string, std::string>;  // (host, agent)

  explicit FleetGuard(FleetPolicy p) : p_(p) {}

  // The name a host gives itself (its probe's heartbeat), which its actuator compares with the
  // directive's canary_host; `host` is the name of its key.
  void on_host_name(const std::string& host, const std::string& declared);
  void on_health(const std::string& host, const std::string& agent, proto::Verdict v,
                 common::MonoTime now);
  // An actuator's `agent_state`: RESTARTING and RECOVERING mean a restart in hand.
  void on_agent_state(const std::string& host, const std::string& agent, const std::string& state);
  // An audit record from a host's actuator: restarts (the breaker, the canary), recoveries and
  // restarts that did not help (the canary's result). `ts`: its time, `now_wall`: the centre's.
  void on_record(const std::string& host, const proto::Event& e, double ts, double now_wall);

  // Decides with the hosts heard from (`up`); returns the `fleet_incident` records of what
  // changed (agent empty, to be audited under the centre's own name).
  std::vector<proto::Event> decide(common::MonoTime now, double now_wall,
                                   const std::map<std::string, bool>& up);
  const FleetDirective& directive() const { return directive_; }
  // For /status: null when nothing is open.
  nlohmann::json to_json() const;

 private:
  struct Seen {
    proto::Verdict verdict = proto::Verdict::kUnknown;
    std::optional<common::MonoTime> unhealthy_since;
    bool busy = false;       // its actuator is restarting it or watching its recovery
    bool restarted = false;  // a restart record for it since it turned unhealthy
  };
  struct Incident {
    std::string id;
    Stage stage = Stage::kCanaryTesting;
    std::string canary_host;  // the key's name
    std::set<AgentKey> members;
    std::string why;  // the canary's result, when held
  };

  bool failing_on_up(const AgentKey& k, const std::map<std::string, bool>& up) const;
  std::optional<std::string> pick_canary(const std::map<std::string, bool>& up) const;
  void open_incident(double now_wall, common::MonoTime now, const std::map<std::string, bool>& up,
                     std::vector<proto::Event>& out);
  void follow_incident(const std::map<std::string, bool>& up, std::vector<proto::Event>& out);
  void check_breaker(double now_wall, std::vector<proto::Event>& out);
  FleetDirective make_directive() const;
  proto::Event record(const std::string& stage, const std::string& reason) const;
  std::string declared(const std::string& host) const;

  FleetPolicy p_;
  std::map<AgentKey, Seen> agents_;
  std::map<std::string, std::string> names_;             // key name -> the host's own name
  std::deque<std::pair<double, std::string>> restarts_;  // (ts, host), oldest first
  std::optional<Incident> incident_;
  std::optional<std::string> breaker_;  // its id while open
  std::string breaker_reason_;
  std::vector<proto::Event> pending_;  // records of changes made by on_record
  FleetDirective directive_;
};

std::string_view to_string(FleetGuard::Stage s);

}  // namespace trading_heal::exporter
