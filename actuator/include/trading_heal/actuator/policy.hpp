// The actuator's restart policy: thresholds, limits and timings, taken from the Config.
#pragma once

#include <chrono>
#include <string>

#include "trading_heal/common/config.hpp"

namespace trading_heal::actuator {

struct Policy {
  int consecutive_threshold = 2;
  int exhausted_after = 6;
  int max_restarts = 3;         // per agent per sliding window
  int fleet_max_restarts = 10;  // all agents per sliding window (circuit breaker)
  std::chrono::milliseconds window{std::chrono::hours(1)};
  std::chrono::milliseconds cooldown{60000};
  // From the incident's first failed check (when the diagnosis is asked).
  std::chrono::milliseconds diagnosis_wait{17000};
  std::chrono::milliseconds backoff_max{900000};
  std::chrono::milliseconds stable_after{600000};
  std::chrono::milliseconds recovery_grace{120000};
  std::chrono::milliseconds interval{30000};
  int global_min_agents = 3;
  std::chrono::milliseconds global_window{60000};
  double jitter = 0.1;  // backoff waits are lengthened by up to this fraction
  // TRADING_HEAL_DRY_RUN: decide as usual, restart nothing, and record each restart that would
  // have been made as `would_restart` without touching the budget, backoff or exhausted state.
  bool dry_run = false;
  std::string host;  // TRADING_HEAL_HOST: the name the centre's orders use for this host

  // recovery_grace = 0 in the config means derived: two intervals plus the longer of the stall
  // threshold and the startup grace (a restarted agent bootstraps before its first decision, and
  // is recovered only once it decides again), at most 15 min.
  static Policy from_config(const common::Config& c);
};

}  // namespace trading_heal::actuator
