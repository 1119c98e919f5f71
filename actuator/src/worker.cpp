#include "trading_heal/actuator/worker.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>

namespace trading_heal::actuator {

RestartWorker::RestartWorker(Factory make) : make_(std::move(make)) {
  efd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd_ < 0) throw std::runtime_error("eventfd failed");
  thread_ = std::thread([this] { run(); });
}

RestartWorker::~RestartWorker() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  ::close(efd_);
}

void RestartWorker::submit(RestartDecision d) {
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(std::move(d));
  }
  cv_.notify_one();
}

std::deque<RestartResult> RestartWorker::take_results() {
  std::uint64_t n = 0;
  (void)!::read(efd_, &n, sizeof n);
  std::lock_guard lock(mu_);
  return std::exchange(results_, {});
}

std::size_t RestartWorker::queued() const {
  std::lock_guard lock(mu_);
  return jobs_.size();
}

void RestartWorker::run() {
  auto restarter = make_();
  while (true) {
    RestartDecision job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
      if (stop_) return;  // a job not started yet is dropped: the state file re-decides it
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    RestartResult r;
    if (restarter) {
      r = (*restarter)->run(job);
    } else {
      r.agent = job.agent;
      r.outcome = Outcome::kFailed;
      r.detail = restarter.error();
    }
    {
      std::lock_guard lock(mu_);
      results_.push_back(std::move(r));
    }
    const std::uint64_t one = 1;
    (void)!::write(efd_, &one, sizeof one);
  }
}

}  // namespace trading_heal::actuator
