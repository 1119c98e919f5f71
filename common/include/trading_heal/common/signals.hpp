// Signals read as file descriptor events (signalfd), so a zmq poll loop sees them in order and
// cppzmq's poll never throws on EINTR. Construct before any thread or zmq context exists: the
// mask is inherited by threads created afterwards.
#pragma once

#include <initializer_list>
#include <optional>

namespace trading_heal::common {

class SignalFd {
 public:
  // Blocks `signals` for this thread (and threads it creates) and opens a signalfd for them.
  // SIGPIPE is always ignored (libcurl and sockets report EPIPE instead).
  explicit SignalFd(std::initializer_list<int> signals);
  ~SignalFd();
  SignalFd(const SignalFd&) = delete;
  SignalFd& operator=(const SignalFd&) = delete;

  int fd() const { return fd_; }
  // The next pending signal, if any (non-blocking).
  std::optional<int> read();

 private:
  int fd_ = -1;
};

}  // namespace trading_heal::common
