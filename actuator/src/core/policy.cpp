#include "trading_heal/actuator/policy.hpp"

#include <algorithm>

namespace trading_heal::actuator {

Policy Policy::from_config(const common::Config& c) {
  Policy p;
  p.consecutive_threshold = c.consecutive_threshold;
  p.exhausted_after = c.exhausted_after;
  p.max_restarts = c.max_restarts;
  p.fleet_max_restarts = c.fleet_max_restarts;
  p.cooldown = c.cooldown;
  p.diagnosis_wait = c.diagnosis_wait;
  p.backoff_max = c.backoff_max;
  p.stable_after = c.stable_after;
  p.interval = c.interval;
  p.global_min_agents = c.global_min_agents;
  p.global_window = c.global_window;
  p.dry_run = c.dry_run;
  p.host = c.host;
  if (c.recovery_grace.count() > 0) {
    p.recovery_grace = c.recovery_grace;
  } else {
    // The probe reports a restarted agent stalled no sooner than its threshold: with auto, the
    // longest one an agent may have learned.
    p.recovery_grace = std::min<std::chrono::milliseconds>(
        2 * c.interval +
            std::max<std::chrono::milliseconds>(c.largest_stall_threshold(), c.startup_grace),
        std::chrono::minutes(15));
  }
  return p;
}

}  // namespace trading_heal::actuator
