#include "trading_heal/common/relay.hpp"

#include <spdlog/spdlog.h>

namespace trading_heal::common {

RecordRelay::RecordRelay(zmq::context_t& ctx, const std::string& endpoint, ReliableSender& upstream,
                         proto::Limits limits, const std::function<void(zmq::socket_t&)>& prepare)
    : receiver_(ctx, endpoint, tracker_, limits, 0666, prepare), upstream_(upstream) {}

void RecordRelay::on_readable(MonoTime now) {
  for (int i = 0; i < 1024; ++i) {
    auto d = receiver_.receive();
    if (!d) return;
    if (auto r = upstream_.forward(d->msg, now); !r) {
      // Not stored: the sender keeps it and resends.
      receiver_.refuse(*d, "relay outbox: " + r.error());
      if (refused_++ == 0) spdlog::error("relay outbox not writable error=\"{}\"", r.error());
      continue;
    }
    receiver_.accept(*d);
    ++relayed_;
  }
}

}  // namespace trading_heal::common
