// The probe daemon's shell: the health PUB, the peer guard, the record sender and its outbox, the
// link to a centre (many hosts) and the Runtime, wired to one loop. main.cpp parses the command
// line and the settings, makes one with the process's clock and context, and runs the loop.
//
// Threads: everything here is the loop thread's (the Runtime's PostgreSQL and learning workers
// are its own).
#pragma once

#include <memory>
#include <string>

#include <tl/expected.hpp>
#include <zmq.hpp>

#include "trading_heal/common/clock.hpp"
#include "trading_heal/common/config.hpp"
#include "trading_heal/common/loop.hpp"
#include "trading_heal/common/peer_guard.hpp"
#include "trading_heal/common/reliable.hpp"
#include "trading_heal/common/zmq.hpp"
#include "trading_heal/probe/centre_link.hpp"
#include "trading_heal/probe/runtime.hpp"

namespace trading_heal::probe {

class Daemon {
 public:
  // Why a daemon could not start, and the exit status that says so (78: configuration).
  struct Failure {
    int exit_code;
    std::string message;
  };
  // Binds the health endpoint, opens the outbox and the centre's link. Nothing is served until
  // attach().
  static tl::expected<std::unique_ptr<Daemon>, Failure> start(const common::Config& cfg,
                                                              const ProbeOptions& opts,
                                                              const common::Identities& ids,
                                                              zmq::context_t& ctx,
                                                              const common::Clock& clock);
  // Registers every socket, file descriptor, signal and the tick with `loop`.
  void attach(common::Loop& loop);
  const Runtime& runtime() const { return *rt_; }

  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

 private:
  Daemon(const common::Config& cfg, const common::Identities& ids, zmq::context_t& ctx,
         const common::Clock& clock);
  void open_events();
  void publish(const proto::Body& body);
  void watch_bus(int fd);  // the bus connection's fd on the loop (-1: none), instead of bus_fd_

  const common::Config& cfg_;
  const common::Identities& ids_;
  zmq::context_t& ctx_;
  const common::Clock& clock_;
  common::Stamper stamper_;
  // Who may read the health reports (the consumers, the operators' tap); where the records go.
  common::PeerGuard guard_;
  zmq::socket_t pub_;
  std::unique_ptr<Runtime> rt_;  // made once the health endpoint is bound
  common::Stamper event_stamper_;
  std::unique_ptr<common::Outbox> outbox_;
  std::unique_ptr<common::ReliableSender> events_;  // null when the outbox cannot be opened
  std::unique_ptr<CentreLink> centre_;              // many hosts: the host's one link to it
  common::Loop* loop_ = nullptr;
  int bus_fd_ = -1;  // watched on the loop
};

}  // namespace trading_heal::probe
