// The diagnoser's shell: sockets, the worker pool, reliable delivery, the model in the centre
// (many hosts), wired to one loop; and --once. main.cpp parses the command line and the settings,
// makes one with the process's context and clock, and runs the loop.
#pragma once

#include <memory>
#include <string>

#include <tl/expected.hpp>
#include <zmq.hpp>

#include "trading_heal/common/clock.hpp"
#include "trading_heal/common/config.hpp"
#include "trading_heal/common/loop.hpp"
#include "trading_heal/common/peer_guard.hpp"
#include "trading_heal/common/signals.hpp"

namespace trading_heal::diagnoser {

class Daemon {
 public:
  // Opens the outboxes, binds and connects every socket, starts the workers; nothing is served
  // until attach(). The error says what could not be opened or bound.
  static tl::expected<std::unique_ptr<Daemon>, std::string> start(const common::Config& cfg,
                                                                  common::Identities ids,
                                                                  zmq::context_t& ctx,
                                                                  const common::Clock& clock);
  // Registers every socket, SIGHUP and the tick with `loop`.
  void attach(common::Loop& loop);
  // After the loop: cancels the model calls in flight and ends the workers.
  void stop();
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

 private:
  class Impl;
  explicit Daemon(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One diagnosis of `agent` now, printed as one JSON line on stdout; returns the exit code.
int run_once(const common::Config& cfg, const std::string& agent, common::SignalFd& signals);

}  // namespace trading_heal::diagnoser
