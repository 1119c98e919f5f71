// Many hosts: a host's audit records to the centre. The probe (the host's one process that talks
// to the centre) receives the records of the host's actuator and diagnoser on a local endpoint
// (TRADING_HEAL_RELAY_ENDPOINT, ipc), stores each in its own on-disk outbox before acknowledging
// it, and its reliable sender forwards them unchanged (their source, boot id and seq) over tcp
// with CURVE to the centre's events endpoint. So the privileged actuator never touches the
// network, and while the centre is away the records wait on the host's disk and arrive exactly
// once, in order per sender, when it is back (the centre de-duplicates on the identity).
// Owned by the probe's loop thread.
#pragma once

#include <functional>
#include <string>

#include <zmq.hpp>

#include "trading_heal/common/clock.hpp"
#include "trading_heal/common/reliable.hpp"

namespace trading_heal::common {

class RecordRelay {
 public:
  // Binds `endpoint`; records go to `upstream`'s outbox. `prepare` runs on the socket before it
  // binds (the probe's peer guard: only the actuator's and the diagnoser's users may send).
  // Throws std::runtime_error naming the endpoint when it cannot bind.
  RecordRelay(zmq::context_t& ctx, const std::string& endpoint, ReliableSender& upstream,
              proto::Limits limits = {}, const std::function<void(zmq::socket_t&)>& prepare = {});
  zmq::socket_t& socket() { return receiver_.socket(); }
  // Stores and acknowledges what waits (call when the socket is readable).
  void on_readable(MonoTime now);
  std::uint64_t relayed() const { return relayed_; }
  std::uint64_t refused() const { return refused_; }
  const ReliableReceiver& receiver() const { return receiver_; }

 private:
  SeqTracker tracker_;
  ReliableReceiver receiver_;
  ReliableSender& upstream_;
  std::uint64_t relayed_ = 0;
  std::uint64_t refused_ = 0;
};

}  // namespace trading_heal::common
