// The actuator daemon's shell: sockets, the restart worker, the state file and the loop wired
// to the pure Engine. Not thread-safe: built and run by the main thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <zmq.hpp>

#include "trading_heal/common/config.hpp"
#include "trading_heal/common/signals.hpp"

namespace trading_heal::actuator {

struct DaemonOptions {
  std::chrono::milliseconds restart_timeout{30000};  // systemd job + verification, each
};

// Builds everything (binds, loads the state file) and runs the loop until SIGTERM/SIGINT.
// Returns the process exit code.
int run_daemon(const common::Config& cfg, const DaemonOptions& opts, zmq::context_t& ctx,
               common::SignalFd& signals);

}  // namespace trading_heal::actuator
