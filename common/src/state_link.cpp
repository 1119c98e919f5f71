#include "trading_heal/common/state_link.hpp"

#include <stdexcept>

#include <spdlog/spdlog.h>

namespace trading_heal::common {

StateLink::StateLink(zmq::context_t& ctx, PeerGuard& guard, const Config& cfg,
                     const Identities& ids, const std::string& component, const Clock& clock)
    : clock_(clock), stamper_(component, clock) {
  const std::string& ep = cfg.endpoints.state;
  if (ep.empty()) return;
  // A small queue: state a dead link cannot carry is old news when the link comes back.
  socket_ = std::make_unique<zmq::socket_t>(
      make_socket(ctx, zmq::socket_type::pub,
                  SocketOptions{.max_msg_size = static_cast<std::int64_t>(cfg.max_message_bytes),
                                .sndhwm = 20000}));
  guard.protect(*socket_, "centre", ids.allow({"exporter"}), ep, Side::kConnect);
  if (auto r = connect_endpoint(*socket_, ep); !r) {
    throw std::runtime_error("cannot connect the state endpoint " + ep + ": " + r.error());
  }
  guard.watch_connection(*socket_, ep);
  spdlog::info("state link to the centre endpoint={} keepalive_s={}", ep, kKeepalive.count());
}

void StateLink::send(const proto::Body& body) {
  if (!socket_) return;
  if (const auto* hb = std::get_if<proto::Heartbeat>(&body)) {
    last_heartbeat_ = *hb;
    last_heartbeat_->interval_seconds = static_cast<double>(kKeepalive.count());
    next_keepalive_ = clock_.mono() + kKeepalive;
    publish(*last_heartbeat_);
    return;
  }
  publish(body);
}

void StateLink::forward(zmq::message_t& frame) {
  if (!socket_) return;
  try {
    if (socket_->send(frame, zmq::send_flags::dontwait)) {
      ++sent_;
      return;
    }
  } catch (const zmq::error_t&) {
  }
  ++dropped_;
}

MonoTime StateLink::on_tick(MonoTime now) {
  if (!socket_) return now + std::chrono::hours(1);
  if (last_heartbeat_ && now >= next_keepalive_) {
    publish(*last_heartbeat_);
    next_keepalive_ = now + kKeepalive;
  }
  return last_heartbeat_ ? next_keepalive_ : now + kKeepalive;
}

void StateLink::publish(proto::Body body) {
  if (send_message(*socket_, stamper_.stamp(std::move(body)))) {
    ++sent_;
  } else {
    ++dropped_;
  }
}

}  // namespace trading_heal::common
