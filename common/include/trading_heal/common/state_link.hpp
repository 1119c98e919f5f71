// Many hosts: a component's state (health reports, heartbeats, agent states) also goes to the
// centre's state endpoint (TRADING_HEAL_STATE_ENDPOINT), on a PUB of its own that connects there
// (over tcp with CURVE: the centre's key). Nothing when the setting is empty (one host).
//
// State is idempotent: a message the link cannot take now (the centre away, its queue full) is
// dropped and the next one replaces it; audit records never travel here (they go through the
// reliable events channel and its on-disk outbox). The link repeats the component's last
// heartbeat every kKeepalive, and every heartbeat it carries says kKeepalive as its interval, so
// the centre tells a silent host (a cut link, a hung or stopped daemon) after 3 of them (6 s),
// whatever the check interval is.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <zmq.hpp>

#include "trading_heal/common/clock.hpp"
#include "trading_heal/common/config.hpp"
#include "trading_heal/common/peer_guard.hpp"
#include "trading_heal/common/zmq.hpp"
#include "trading_heal/proto/messages.hpp"

namespace trading_heal::common {

class StateLink {
 public:
  static constexpr std::chrono::seconds kKeepalive{2};

  // Connects to cfg.endpoints.state when set, guarded by `guard` (a tcp endpoint: CURVE client;
  // ipc: only the exporter's user may be the peer). Throws std::runtime_error naming the
  // endpoint when it cannot connect (startup).
  StateLink(zmq::context_t& ctx, PeerGuard& guard, const Config& cfg, const Identities& ids,
            const std::string& component, const Clock& clock);
  bool enabled() const { return socket_ != nullptr; }
  // Publishes `body` to the centre (a heartbeat with the link's interval). Never blocks.
  void send(const proto::Body& body);
  // Publishes a frame of another local component (the actuator's, the diagnoser's) as it is.
  void forward(zmq::message_t& frame);
  // Sends the keepalive when due; returns when it is due next (far away when disabled).
  MonoTime on_tick(MonoTime now);
  std::uint64_t sent() const { return sent_; }
  std::uint64_t dropped() const { return dropped_; }

 private:
  void publish(proto::Body body);

  const Clock& clock_;
  Stamper stamper_;
  std::unique_ptr<zmq::socket_t> socket_;
  std::optional<proto::Heartbeat> last_heartbeat_;
  MonoTime next_keepalive_{};
  std::uint64_t sent_ = 0;
  std::uint64_t dropped_ = 0;
};

}  // namespace trading_heal::common
