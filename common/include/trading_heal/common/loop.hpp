// The one event loop of a daemon: zmq sockets, plain fds and signals (via SignalFd) polled
// together, one periodic tick driven by deadlines, and the systemd watchdog pinged from the
// loop itself (so a wedged loop stops the pings and systemd restarts the daemon).
// Not thread-safe: owned and run by the main thread.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <vector>

#include <zmq.hpp>

#include "trading_heal/common/clock.hpp"
#include "trading_heal/common/signals.hpp"

namespace trading_heal::common {

class Loop {
 public:
  // `signals` must include SIGTERM and SIGINT (they stop the loop).
  explicit Loop(SignalFd& signals);

  void on_readable(zmq::socket_t& socket, std::function<void()> fn);
  void on_fd(int fd, std::function<void()> fn);
  // Stops watching `fd` (e.g. a connection about to be closed and replaced). Safe from a
  // handler: the entry is dropped once the handlers of this round have run.
  void remove_fd(int fd);
  void on_signal(int signo, std::function<void()> fn);  // e.g. SIGHUP, SIGCHLD
  // Called when the deadline has passed; returns the next deadline.
  void on_tick(MonoTime first, std::function<MonoTime(MonoTime now)> fn);
  // Brings the next tick forward (never later than already planned).
  void wake_at(MonoTime t);

  // Runs until SIGTERM/SIGINT or stop(). Returns the signal that stopped it (0 for stop()).
  int run();
  void stop() { stopping_ = true; }

 private:
  SignalFd& signals_;
  std::vector<zmq::pollitem_t> items_;
  std::vector<std::function<void()>> handlers_;
  std::map<int, std::function<void()>> signal_handlers_;
  std::function<MonoTime(MonoTime)> tick_;
  std::optional<MonoTime> next_tick_;
  void compact();
  bool dispatching_ = false;
  bool stopping_ = false;
  int stop_signal_ = 0;
};

}  // namespace trading_heal::common
