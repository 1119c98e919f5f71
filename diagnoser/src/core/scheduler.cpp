#include "trading_heal/diagnoser/scheduler.hpp"

#include <algorithm>

namespace trading_heal::diagnoser {

bool Scheduler::busy(const std::string& agent) const {
  if (running_.count(agent) != 0) return true;
  return std::any_of(queue_.begin(), queue_.end(),
                     [&](const Job& j) { return j.context.agent == agent; });
}

Scheduler::Admit Scheduler::submit(Job job) {
  if (busy(job.context.agent)) return Admit::kDuplicate;
  if (queue_.size() >= capacity_) return Admit::kQueueFull;
  queue_.push_back(std::move(job));
  return Admit::kQueued;
}

std::optional<Job> Scheduler::next() {
  if (running_.size() >= workers_ || queue_.empty()) return std::nullopt;
  Job j = std::move(queue_.front());
  queue_.pop_front();
  running_.insert(j.context.agent);
  return j;
}

void Scheduler::done(const std::string& agent) { running_.erase(agent); }

}  // namespace trading_heal::diagnoser
