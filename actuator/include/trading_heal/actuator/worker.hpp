// The restart worker: one thread that runs restarts (blocking systemd calls, hooks) so that the
// loop never blocks. Jobs go in through submit(); results come back through a queue whose
// eventfd the loop polls. Between jobs the thread keeps the unit manager's connection processed
// (UnitManager::idle), so a connection is healthy when a restart comes, however late.
// Thread-safe: submit/take_results/queued/bus_losses from the loop, run() on the worker.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "trading_heal/actuator/restarter.hpp"

namespace trading_heal::actuator {

class RestartWorker {
 public:
  // `make` builds the Restarter on the worker thread (an sd-bus connection belongs to the
  // thread that uses it). When it fails, every job fails with its message.
  using Factory = std::function<tl::expected<std::unique_ptr<Restarter>, std::string>()>;
  explicit RestartWorker(Factory make);
  ~RestartWorker();
  RestartWorker(const RestartWorker&) = delete;
  RestartWorker& operator=(const RestartWorker&) = delete;

  void submit(RestartDecision d);
  int fd() const { return results_fd_; }  // readable when results are waiting
  std::deque<RestartResult> take_results();
  std::size_t queued() const;
  // The unit manager's lost bus connections so far (trading_selfheal_bus_reconnects_total).
  std::uint64_t bus_losses() const { return bus_losses_.load(std::memory_order_relaxed); }

 private:
  void run();
  // Waits until a job or stop is signalled, serving the manager's idle work meanwhile.
  void wait_for_work(Restarter* restarter);
  Factory make_;
  int results_fd_ = -1;
  int jobs_fd_ = -1;  // written on submit and on stop
  mutable std::mutex mu_;
  std::deque<RestartDecision> jobs_;
  std::deque<RestartResult> results_;
  bool stop_ = false;
  std::atomic<std::uint64_t> bus_losses_{0};
  std::thread thread_;
};

}  // namespace trading_heal::actuator
