// Many hosts: the probe is a host's one link to the centre (docs/operations.md "Many hosts").
// Its own state goes to the centre's state endpoint (common::StateLink), with the actuator's and
// the diagnoser's, read on their local PUB sockets and passed on as they are; the records they
// leave on the relay endpoint go through the probe's outbox to the centre's events endpoint
// (common::RecordRelay). Each part is there only when its setting is: one host has neither.
// Owned by the probe's loop thread.
#pragma once

#include <memory>
#include <string>

#include <zmq.hpp>

#include "trading_heal/common/clock.hpp"
#include "trading_heal/common/config.hpp"
#include "trading_heal/common/loop.hpp"
#include "trading_heal/common/peer_guard.hpp"
#include "trading_heal/common/relay.hpp"
#include "trading_heal/common/reliable.hpp"
#include "trading_heal/common/state_link.hpp"

namespace trading_heal::probe {

class CentreLink {
 public:
  // `events`: the probe's own record sender (to the centre), nullptr when its outbox failed.
  // Throws std::runtime_error naming what cannot be bound or connected, or a relay without an
  // outbox to keep the records in.
  CentreLink(zmq::context_t& ctx, common::PeerGuard& guard, const common::Config& cfg,
             const common::Identities& ids, const common::Clock& clock,
             common::ReliableSender* events);
  // Watches the relay and the local state sockets.
  void attach(common::Loop& loop);
  // The probe's own state, to the centre too.
  void publish(const proto::Body& body) { link_.send(body); }
  // Keepalive due; returns when next.
  common::MonoTime on_tick(common::MonoTime now) { return link_.on_tick(now); }

 private:
  void pass_local_state();

  const common::Clock& clock_;
  common::StateLink link_;
  std::unique_ptr<common::RecordRelay> relay_;
  std::unique_ptr<zmq::socket_t> local_state_;  // the actuator's and diagnoser's PUBs
};

}  // namespace trading_heal::probe
