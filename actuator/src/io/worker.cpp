#include "trading_heal/actuator/worker.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <stdexcept>

namespace trading_heal::actuator {
namespace {

void signal_fd(int fd) {
  const std::uint64_t one = 1;
  (void)!::write(fd, &one, sizeof one);
}

void clear_fd(int fd) {
  std::uint64_t n = 0;
  (void)!::read(fd, &n, sizeof n);
}

}  // namespace

RestartWorker::RestartWorker(Factory make) : make_(std::move(make)) {
  results_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  jobs_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (results_fd_ < 0 || jobs_fd_ < 0) throw std::runtime_error("eventfd failed");
  thread_ = std::thread([this] { run(); });
}

RestartWorker::~RestartWorker() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  signal_fd(jobs_fd_);
  thread_.join();
  ::close(results_fd_);
  ::close(jobs_fd_);
}

void RestartWorker::submit(RestartDecision d) {
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(std::move(d));
  }
  signal_fd(jobs_fd_);
}

std::deque<RestartResult> RestartWorker::take_results() {
  clear_fd(results_fd_);
  std::lock_guard lock(mu_);
  return std::exchange(results_, {});
}

std::size_t RestartWorker::queued() const {
  std::lock_guard lock(mu_);
  return jobs_.size();
}

void RestartWorker::wait_for_work(Restarter* restarter) {
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stop_ || !jobs_.empty()) return;
    }
    UnitManager* units = restarter != nullptr ? &restarter->units() : nullptr;
    pollfd fds[2] = {{jobs_fd_, POLLIN, 0}, {units != nullptr ? units->idle_fd() : -1, POLLIN, 0}};
    int timeout_ms = -1;
    if (units != nullptr) {
      // The manager's own wish first (a reconnection attempt), then at least a look every
      // minute: a connection must be processed long before sd-bus's 90 s would matter.
      const auto wish = units->idle();
      timeout_ms = wish ? static_cast<int>(std::min<long long>(wish->count(), 60000)) : 60000;
      fds[1].fd = units->idle_fd();
      bus_losses_.store(units->connection_losses(), std::memory_order_relaxed);
    }
    const int r = ::poll(fds, 2, timeout_ms);
    if (r < 0 && errno != EINTR) return;  // cannot wait: look at the queue again
    if ((fds[0].revents & POLLIN) != 0) clear_fd(jobs_fd_);
  }
}

void RestartWorker::run() {
  auto restarter = make_();
  Restarter* r0 = restarter ? restarter->get() : nullptr;
  while (true) {
    wait_for_work(r0);
    RestartDecision job;
    {
      std::lock_guard lock(mu_);
      if (stop_) return;  // a job not started yet is dropped: the state file re-decides it
      if (jobs_.empty()) continue;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    RestartResult r;
    if (restarter) {
      r = (*restarter)->run(job);
      bus_losses_.store((*restarter)->units().connection_losses(), std::memory_order_relaxed);
    } else {
      r.agent = job.agent;
      r.outcome = Outcome::kFailed;
      r.detail = restarter.error();
    }
    {
      std::lock_guard lock(mu_);
      results_.push_back(std::move(r));
    }
    signal_fd(results_fd_);
  }
}

}  // namespace trading_heal::actuator
