// The restart worker: one thread that runs restarts (blocking systemd calls, hooks) so that the
// loop never blocks. Jobs go in through submit(); results come back through a queue whose
// eventfd the loop polls. Thread-safe: submit/take_results from the loop, run() on the worker.
#pragma once

#include <condition_variable>
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
  int fd() const { return efd_; }  // readable when results are waiting
  std::deque<RestartResult> take_results();
  std::size_t queued() const;

 private:
  void run();
  Factory make_;
  int efd_ = -1;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<RestartDecision> jobs_;
  std::deque<RestartResult> results_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace trading_heal::actuator
