// Everything the actuator's core knows: the policy, every agent's state, the global incident,
// the counters and the backoff's random source. The Engine owns one; the core's units
// (actuator/src/core) read and change it. Not thread-safe.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "trading_heal/actuator/agent_state.hpp"
#include "trading_heal/actuator/policy.hpp"

namespace trading_heal::actuator {

struct Model {
  Policy policy;
  std::vector<AgentState> agents;  // the configured agents, in configuration order
  GlobalIncident global;
  FleetOrder fleet;             // many hosts: the centre's order, if any
  bool db_unreachable = false;  // the probe's last heartbeat said so
  Counters counters;
  std::mt19937_64 rng;  // the backoff's jitter
  bool dirty = false;   // something persisted changed since the last save

  AgentState* find(const std::string& instance);
  const AgentState* find(const std::string& instance) const;
};

}  // namespace trading_heal::actuator
