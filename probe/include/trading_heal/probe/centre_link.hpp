// Many hosts: the probe is a host's one link to the centre (docs/operations.md "Many hosts").
// Its own state goes to the centre's state endpoint (common::StateLink), with the actuator's and
// the diagnoser's, read on their local PUB sockets and passed on as they are; the records they
// leave on the relay endpoint go through the probe's outbox to the centre's events endpoint
// (common::RecordRelay); the centre's orders (fleet-wide holds, TRADING_HEAL_FLEET_ENDPOINT) come
// back on a SUB and go to the host's actuator through `on_order`; the diagnoser's model requests
// (TRADING_HEAL_MODEL_RELAY_ENDPOINT) go to the centre's analysis endpoint and the answers back
// (common::RequestRelay). Each part is there only when
// its setting is: one host has none.
// Owned by the probe's loop thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <zmq.hpp>

#include "trading_heal/common/clock.hpp"
#include "trading_heal/common/config.hpp"
#include "trading_heal/common/loop.hpp"
#include "trading_heal/common/peer_guard.hpp"
#include "trading_heal/common/relay.hpp"
#include "trading_heal/common/reliable.hpp"
#include "trading_heal/common/request_relay.hpp"
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
  // The centre's `fleet_directive` events, as they come (every 2 s while the link is up).
  std::function<void(const proto::Event&)> on_order;
  std::uint64_t orders() const { return orders_; }
  // The model relay, nullptr without one.
  const common::RequestRelay* model_relay() const { return model_relay_.get(); }
  // Keepalive due; returns when next.
  common::MonoTime on_tick(common::MonoTime now) { return link_.on_tick(now); }

 private:
  // What the constructor's steps wire with.
  struct Wiring {
    zmq::context_t& ctx;
    common::PeerGuard& guard;
    const common::Config& cfg;
    const common::Identities& ids;
  };
  void open_record_relay(const Wiring& w, common::ReliableSender* events);
  void open_model_relay(const Wiring& w);
  void open_orders(const Wiring& w);
  void open_local_state(const Wiring& w);
  void pass_local_state();
  void take_orders();

  const common::Clock& clock_;
  common::StateLink link_;
  std::unique_ptr<common::RecordRelay> relay_;
  std::unique_ptr<common::RequestRelay> model_relay_;
  std::unique_ptr<zmq::socket_t> local_state_;  // the actuator's and diagnoser's PUBs
  std::unique_ptr<zmq::socket_t> orders_sub_;   // the centre's fleet PUB
  proto::Limits limits_;
  proto::RejectCounter rejects_;
  std::uint64_t orders_ = 0;
  std::string last_order_;  // as logged
};

}  // namespace trading_heal::probe
