// The diagnoser's shell: sockets, the loop, the worker pool, reliable delivery; and --once.
#pragma once

#include <string>

#include "trading_heal/common/config.hpp"
#include "trading_heal/common/signals.hpp"

namespace trading_heal::diagnoser {

// Runs until SIGTERM/SIGINT; returns the process exit code.
int run_daemon(const common::Config& cfg, common::SignalFd& signals);

// One diagnosis of `agent` now, printed as one JSON line on stdout; returns the exit code.
int run_once(const common::Config& cfg, const std::string& agent, common::SignalFd& signals);

}  // namespace trading_heal::diagnoser
