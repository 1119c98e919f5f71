#include "trading_heal/probe/deadlines.hpp"

#include <algorithm>

namespace trading_heal::probe {

using proto::Verdict;

void DeadlineSchedule::set(std::size_t i, common::MonoTime when) {
  clear(i);
  at_.at(i) = when;
  queue_.emplace(when, i);
}

void DeadlineSchedule::clear(std::size_t i) {
  if (auto& a = at_.at(i)) {
    queue_.erase({*a, i});
    a.reset();
  }
}

void DeadlineSchedule::after_check(std::size_t i, common::MonoTime now, Verdict verdict,
                                   std::uint32_t consecutive,
                                   std::optional<double> effective_age_s) {
  const bool failing = verdict == Verdict::kDown || verdict == Verdict::kStalled;
  if (failing) {
    if (static_cast<int>(consecutive) >= policy_.consecutive_threshold) {
      clear(i);  // confirmed: the actuator acts; the cycle keeps reporting
    } else {
      const auto when =
          now + (verdict == Verdict::kDown ? std::min(policy_.confirm, policy_.confirm_down)
                                           : policy_.confirm);
      // A burst of signals about one crash must not push the confirmation later and later.
      if (!at_[i] || *at_[i] > when) set(i, when);
    }
    return;
  }
  if (verdict == Verdict::kHealthy && effective_age_s) {
    const double left = std::max(0.0, threshold_s_.at(i) - *effective_age_s);
    set(i, now +
               std::chrono::duration_cast<common::MonoTime::duration>(
                   std::chrono::duration<double>(left)) +
               policy_.past);
    return;
  }
  clear(i);
}

common::MonoTime::duration DeadlineSchedule::failure_spacing(Verdict verdict) const {
  const auto spacing =
      verdict == Verdict::kDown ? std::min(policy_.confirm, policy_.confirm_down) : policy_.confirm;
  return std::max(spacing - policy_.batch, std::chrono::milliseconds{0});
}

std::optional<common::MonoTime> DeadlineSchedule::next() const {
  if (queue_.empty()) return std::nullopt;
  return queue_.begin()->first;
}

std::vector<std::size_t> DeadlineSchedule::take_due(common::MonoTime now) {
  std::vector<std::size_t> due;
  if (queue_.empty() || queue_.begin()->first > now) return due;
  const auto until = std::max(now, queue_.begin()->first + policy_.batch);
  while (!queue_.empty() && queue_.begin()->first <= until) {
    const std::size_t i = queue_.begin()->second;
    queue_.erase(queue_.begin());
    at_[i].reset();
    due.push_back(i);
  }
  return due;
}

}  // namespace trading_heal::probe
