#include "trading_heal/probe/centre_link.hpp"

#include <stdexcept>

#include <spdlog/spdlog.h>

#include "trading_heal/common/zmq.hpp"
#include "trading_heal/proto/actions.hpp"

namespace trading_heal::probe {

CentreLink::CentreLink(zmq::context_t& ctx, common::PeerGuard& guard, const common::Config& cfg,
                       const common::Identities& ids, const common::Clock& clock,
                       common::ReliableSender* events)
    : clock_(clock),
      link_(ctx, guard, cfg, ids, "probe", clock),
      limits_{.max_bytes = cfg.max_message_bytes} {
  const Wiring w{ctx, guard, cfg, ids};
  if (!cfg.endpoints.relay.empty()) open_record_relay(w, events);
  if (!cfg.endpoints.model_relay.empty()) open_model_relay(w);
  if (!cfg.endpoints.fleet.empty()) open_orders(w);
  if (link_.enabled()) open_local_state(w);
}

// The host's diagnoser's and actuator's records, kept in the probe's outbox for the centre.
void CentreLink::open_record_relay(const Wiring& w, common::ReliableSender* events) {
  if (events == nullptr) {
    throw std::runtime_error("many hosts need the probe's outbox to relay records: cannot open " +
                             w.cfg.data_dir + "/probe-outbox");
  }
  relay_ = std::make_unique<common::RecordRelay>(
      w.ctx, w.cfg.endpoints.relay, *events, proto::Limits{.max_bytes = w.cfg.max_message_bytes},
      [&](zmq::socket_t& s) {
        w.guard.protect(s, "relay", w.ids.allow({"diagnoser", "actuator"}), w.cfg.endpoints.relay);
      });
}

// The host's diagnoser asks here; over the link only the centre's exporter answers.
void CentreLink::open_model_relay(const Wiring& w) {
  const auto& ep = w.cfg.endpoints;
  if (ep.analysis.empty()) {
    throw std::runtime_error(
        "TRADING_HEAL_MODEL_RELAY_ENDPOINT is set but not TRADING_HEAL_ANALYSIS_ENDPOINT (the "
        "centre's, where the probe passes the diagnoser's model requests)");
  }
  const auto protect_front = [&](zmq::socket_t& s) {
    w.guard.protect(s, "model", w.ids.allow({"diagnoser"}), ep.model_relay);
  };
  const auto protect_back = [&](zmq::socket_t& s) {
    w.guard.protect(s, "analysis", w.ids.allow({"exporter"}), ep.analysis, common::Side::kConnect);
  };
  common::RequestRelay::Options o{.name = "model relay",
                                  .front = ep.model_relay,
                                  .back = ep.analysis,
                                  .local_host = w.cfg.host,
                                  .max_bytes = static_cast<std::int64_t>(w.cfg.max_message_bytes),
                                  .protect_front = protect_front,
                                  .protect_back = protect_back};
  model_relay_ = std::make_unique<common::RequestRelay>(w.ctx, std::move(o));
  w.guard.watch_connection(model_relay_->back(), ep.analysis);
}

// The centre's orders: only the centre's exporter may speak here (over tcp: its key).
void CentreLink::open_orders(const Wiring& w) {
  const std::string& ep = w.cfg.endpoints.fleet;
  orders_sub_ = std::make_unique<zmq::socket_t>(
      common::make_socket(w.ctx, zmq::socket_type::sub,
                          {.max_msg_size = static_cast<std::int64_t>(w.cfg.max_message_bytes)}));
  orders_sub_->set(zmq::sockopt::subscribe, "");
  w.guard.protect(*orders_sub_, "fleet", w.ids.allow({"exporter"}), ep, common::Side::kConnect);
  if (auto c = common::connect_endpoint(*orders_sub_, ep); !c) {
    throw std::runtime_error("cannot connect the fleet endpoint " + ep + ": " + c.error());
  }
  w.guard.watch_connection(*orders_sub_, ep);
}

// The host's own actuator's and diagnoser's state, for the centre.
void CentreLink::open_local_state(const Wiring& w) {
  local_state_ = std::make_unique<zmq::socket_t>(
      common::make_socket(w.ctx, zmq::socket_type::sub,
                          {.max_msg_size = static_cast<std::int64_t>(w.cfg.max_message_bytes)}));
  local_state_->set(zmq::sockopt::subscribe, "");
  w.guard.protect(*local_state_, "local", w.ids.allow({"actuator", "diagnoser"}),
                  w.cfg.endpoints.actuator_pub, common::Side::kConnect);
  for (const auto& ep : {w.cfg.endpoints.actuator_pub, w.cfg.endpoints.diagnoser_pub}) {
    if (auto c = common::connect_endpoint(*local_state_, ep); !c) {
      throw std::runtime_error("cannot connect " + ep + ": " + c.error());
    }
    w.guard.watch_connection(*local_state_, ep);
  }
}

void CentreLink::attach(common::Loop& loop) {
  if (relay_) loop.on_readable(relay_->socket(), [this] { relay_->on_readable(clock_.mono()); });
  if (local_state_) loop.on_readable(*local_state_, [this] { pass_local_state(); });
  if (orders_sub_) loop.on_readable(*orders_sub_, [this] { take_orders(); });
  if (model_relay_) model_relay_->attach(loop);
}

void CentreLink::take_orders() {
  for (int i = 0; i < 100; ++i) {
    zmq::message_t frame;
    try {
      if (!orders_sub_->recv(frame, zmq::recv_flags::dontwait)) return;
    } catch (const zmq::error_t&) {
      return;
    }
    auto msg = common::decode_frame(frame, rejects_, limits_);
    if (!msg) continue;
    const auto* e = std::get_if<proto::Event>(&msg->body);
    if (e == nullptr || e->action != proto::to_string(proto::Action::kFleetDirective)) continue;
    ++orders_;
    const auto hold = e->fields.find("hold");
    const bool holds = hold != e->fields.end() && std::holds_alternative<bool>(hold->second) &&
                       std::get<bool>(hold->second);
    const std::string said = holds ? "hold: " + e->reason : std::string("no hold");
    if (said != last_order_) {
      spdlog::info("the centre's order changed: {}", said);
      last_order_ = said;
    }
    if (on_order) on_order(*e);
  }
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
