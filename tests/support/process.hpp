// Spawning a program under test (a daemon, a tool) with extra environment, reading its stdout,
// and stopping it. The child is killed (SIGKILL) when the Child is destroyed if still running.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace trading_heal::test {

class Child {
 public:
  // argv[0] is a path. `env` entries are added to (and override) this process's environment.
  // stdout is captured through a pipe when `capture_stdout`; stderr is inherited.
  static Child spawn(const std::vector<std::string>& argv,
                     const std::map<std::string, std::string>& env = {},
                     bool capture_stdout = false);
  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int signo);
  // Waits for exit up to `timeout`; returns the exit status (128+signal if killed) or nullopt.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  // Reads one line of stdout, waiting up to `timeout`.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  // Everything read from stdout so far plus whatever is available now (non-blocking).
  const std::string& output();

 private:
  Child() = default;
  void reap_nonblocking();
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::optional<int> status_;
  std::string buffer_;
  std::string all_;
};

}  // namespace trading_heal::test
