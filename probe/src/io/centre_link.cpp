#include "trading_heal/probe/centre_link.hpp"

#include <stdexcept>

#include "trading_heal/common/zmq.hpp"

namespace trading_heal::probe {

CentreLink::CentreLink(zmq::context_t& ctx, common::PeerGuard& guard, const common::Config& cfg,
                       const common::Identities& ids, const common::Clock& clock,
                       common::ReliableSender* events)
    : clock_(clock), link_(ctx, guard, cfg, ids, "probe", clock) {
  if (!cfg.endpoints.relay.empty()) {
    if (events == nullptr) {
      throw std::runtime_error("many hosts need the probe's outbox to relay records: cannot open " +
                               cfg.data_dir + "/probe-outbox");
    }
    relay_ = std::make_unique<common::RecordRelay>(
        ctx, cfg.endpoints.relay, *events, proto::Limits{.max_bytes = cfg.max_message_bytes},
        [&](zmq::socket_t& s) {
          guard.protect(s, "relay", ids.allow({"diagnoser", "actuator"}), cfg.endpoints.relay);
        });
  }
  if (!link_.enabled()) return;
  local_state_ = std::make_unique<zmq::socket_t>(
      common::make_socket(ctx, zmq::socket_type::sub,
                          {.max_msg_size = static_cast<std::int64_t>(cfg.max_message_bytes)}));
  local_state_->set(zmq::sockopt::subscribe, "");
  guard.protect(*local_state_, "local", ids.allow({"actuator", "diagnoser"}),
                cfg.endpoints.actuator_pub, common::Side::kConnect);
  for (const auto& ep : {cfg.endpoints.actuator_pub, cfg.endpoints.diagnoser_pub}) {
    if (auto c = common::connect_endpoint(*local_state_, ep); !c) {
      throw std::runtime_error("cannot connect " + ep + ": " + c.error());
    }
    guard.watch_connection(*local_state_, ep);
  }
}

void CentreLink::attach(common::Loop& loop) {
  if (relay_) loop.on_readable(relay_->socket(), [this] { relay_->on_readable(clock_.mono()); });
  if (local_state_) loop.on_readable(*local_state_, [this] { pass_local_state(); });
}

void CentreLink::pass_local_state() {
  for (int i = 0; i < 1000; ++i) {
    zmq::message_t frame;
    try {
      if (!local_state_->recv(frame, zmq::recv_flags::dontwait)) return;
    } catch (const zmq::error_t&) {
      return;
    }
    link_.forward(frame);
  }
}

}  // namespace trading_heal::probe
