// When cycles run: every interval on the monotonic clock, never two at once, overruns counted.
// A cycle has two phases: begin (the fleet query is submitted) and finish (facts gathered,
// reports published) once the answer is in or the database budget is spent. Pure; not
// thread-safe.
#pragma once

#include <chrono>
#include <cstdint>

#include "trading_heal/common/clock.hpp"

namespace trading_heal::probe {

class CycleSchedule {
 public:
  using Duration = std::chrono::steady_clock::duration;
  struct Timing {
    Duration interval;   // from one cycle's start to the next
    Duration db_budget;  // how long a cycle waits for the database
  };
  CycleSchedule(common::MonoTime first, Timing timing)
      : next_(first), interval_(timing.interval), budget_(timing.db_budget) {}

  bool due(common::MonoTime now) const { return !running_ && now >= next_; }
  // Starts a cycle at `now`. Cycles missed because the previous one ran too long, or because
  // the loop was late, count as overruns; the grid is kept (next = the first slot after now).
  void begin(common::MonoTime now);
  bool running() const { return running_; }
  // The moment the cycle must finish even without a database answer.
  common::MonoTime finish_by() const { return started_ + budget_; }
  void finish(common::MonoTime now);
  // The next moment the loop has something to do for the schedule.
  common::MonoTime next_deadline() const { return running_ ? finish_by() : next_; }

  std::uint64_t overruns() const { return overruns_; }
  std::uint64_t cycles() const { return cycles_; }
  double last_cycle_seconds() const { return last_seconds_; }

 private:
  common::MonoTime next_;
  Duration interval_;
  Duration budget_;
  common::MonoTime started_{};
  bool running_ = false;
  std::uint64_t overruns_ = 0;
  std::uint64_t cycles_ = 0;
  double last_seconds_ = 0;
};

}  // namespace trading_heal::probe
