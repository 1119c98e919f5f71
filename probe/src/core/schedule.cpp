// The cycle schedule.
#include "trading_heal/probe/schedule.hpp"

namespace trading_heal::probe {

void CycleSchedule::begin(common::MonoTime now) {
  running_ = true;
  started_ = now;
  // Slots that passed entirely while we were busy are overruns (a cycle too slow for the
  // interval). A slot is missed when now has reached the slot after it.
  if (now >= next_ + interval_) {
    const auto missed = (now - next_) / interval_;
    overruns_ += static_cast<std::uint64_t>(missed);
    next_ += missed * interval_;
  }
  next_ += interval_;
}

void CycleSchedule::finish(common::MonoTime now) {
  running_ = false;
  ++cycles_;
  last_seconds_ = std::chrono::duration<double>(now - started_).count();
  if (now >= next_) {
    // This cycle outlived its interval: the slots it covered are overruns, and the next cycle
    // starts right away, on the grid's latest slot.
    const auto k = (now - next_) / interval_;
    overruns_ += static_cast<std::uint64_t>(k) + 1;
    next_ += k * interval_;
  }
}

}  // namespace trading_heal::probe
