// Admission of diagnosis jobs: a bounded queue, at most one job per agent queued or running,
// at most `workers` running. Pure; not thread-safe (owned by the loop thread).
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <set>
#include <string>

#include "trading_heal/diagnoser/context.hpp"

namespace trading_heal::diagnoser {

struct Job {
  IncidentContext context;
  std::string incident;    // id carried into the Diagnosis
  std::string origin;      // health | command | once
  std::string request_id;  // of a diagnose Command
};

class Scheduler {
 public:
  enum class Admit { kQueued, kDuplicate, kQueueFull };
  struct Limits {
    std::size_t workers = 1;          // diagnoses running at once
    std::size_t queue_capacity = 16;  // waiting ones; more: kQueueFull
  };
  explicit Scheduler(Limits limits) : workers_(limits.workers), capacity_(limits.queue_capacity) {}
  Admit submit(Job job);
  // The next job to start now, if a worker is free; its agent is then in flight.
  std::optional<Job> next();
  void done(const std::string& agent);
  std::size_t queued() const { return queue_.size(); }
  std::size_t in_flight() const { return running_.size(); }
  bool busy(const std::string& agent) const;

 private:
  std::size_t workers_;
  std::size_t capacity_;
  std::deque<Job> queue_;
  std::set<std::string> running_;
};

}  // namespace trading_heal::diagnoser
