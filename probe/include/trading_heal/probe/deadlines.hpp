// Per-agent check deadlines, next to the cycle: the moment an agent's newest decision becomes
// stale (its decision time + the stall threshold, or its start + startup grace + threshold while
// it has not decided since), and the quick confirmation checks after a failed one. The loop
// checks an agent at its deadline instead of waiting for the next cycle, so a stall is seen when
// it happens, whatever the interval. Pure (time passed in); not thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "trading_heal/common/clock.hpp"
#include "trading_heal/proto/messages.hpp"

namespace trading_heal::probe {

struct DeadlinePolicy {
  // Every agent's threshold until set_stall_threshold() gives it its own (a learned one).
  double stall_threshold_s = 600;
  // The confirming checks after a failed one (TRADING_HEAL_CONSECUTIVE_THRESHOLD of them in a
  // row make a failure) are spaced by this (TRADING_HEAL_CONFIRM_INTERVAL)...
  std::chrono::milliseconds confirm{2000};
  // ...and a DOWN by at most this: systemd already said the process is gone, the second look
  // only rules out a restart in flight.
  std::chrono::milliseconds confirm_down{500};
  int consecutive_threshold = 2;
  // Deadlines due within this of each other are checked together (one query).
  std::chrono::milliseconds batch{20};
  // A check at the deadline itself would find the age at (not over) the threshold; more than
  // the batch window, so that a check batched early is still past it.
  std::chrono::milliseconds past{50};
};

class DeadlineSchedule {
 public:
  explicit DeadlineSchedule(std::size_t agents, DeadlinePolicy policy = {})
      : policy_(policy), at_(agents), threshold_s_(agents, policy.stall_threshold_s) {}

  // Agent `i`'s own stall threshold (TRADING_HEAL_STALL_THRESHOLD=auto); the next check of it
  // schedules its deadline with this one.
  void set_stall_threshold(std::size_t i, double seconds) { threshold_s_.at(i) = seconds; }
  double stall_threshold(std::size_t i) const { return threshold_s_.at(i); }

  // After a check of agent `i` at `now`: its next deadline from what the check found. A failing
  // verdict not yet confirmed gets a confirmation check; a healthy one with a known effective
  // age a check when that age reaches the threshold; anything else (confirmed failures, UNKNOWN,
  // STOPPED) none: the cycle goes on checking it.
  void after_check(std::size_t i, common::MonoTime now, proto::Verdict verdict,
                   std::uint32_t consecutive, std::optional<double> effective_age_s);
  void set(std::size_t i, common::MonoTime when);
  void clear(std::size_t i);

  // The least time between two failures that both count toward the consecutive threshold: the
  // confirmation interval (for a DOWN, the shorter of it and confirm_down), less the batch window
  // (a batched check may run that much before its own deadline). A cycle that happens to fall
  // between a failed check and its confirmation then does not confirm early.
  common::MonoTime::duration failure_spacing(proto::Verdict verdict) const;

  std::optional<common::MonoTime> next() const;
  // The agents due at `now`, with those due within the batch window after the first one.
  // Their deadlines are cleared (the check sets new ones).
  std::vector<std::size_t> take_due(common::MonoTime now);
  std::optional<common::MonoTime> deadline(std::size_t i) const { return at_.at(i); }
  std::size_t pending() const { return queue_.size(); }
  const DeadlinePolicy& policy() const { return policy_; }

 private:
  DeadlinePolicy policy_;
  std::vector<std::optional<common::MonoTime>> at_;
  std::set<std::pair<common::MonoTime, std::size_t>> queue_;
  std::vector<double> threshold_s_;
};

}  // namespace trading_heal::probe
