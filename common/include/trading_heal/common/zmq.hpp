// ZeroMQ helpers: sockets with safe options, bind/connect from configured endpoints (ipc socket
// file mode), and sending/receiving proto messages with bounded, counted decoding.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <tl/expected.hpp>
#include <zmq.hpp>

#include "trading_heal/common/clock.hpp"
#include "trading_heal/proto/codec.hpp"

namespace trading_heal::common {

struct SocketOptions {
  int linger_ms = 200;  // never infinite: shutdown must not hang on an absent peer
  std::int64_t max_msg_size = 256 * std::int64_t{1024};  // the peer is disconnected past this
  int sndhwm = 1000;
  int rcvhwm = 1000;
  int sndtimeo_ms = -1;
};

zmq::socket_t make_socket(zmq::context_t& ctx, zmq::socket_type type,
                          const SocketOptions& opts = {});

// Binds `endpoint`. For ipc:// the parent directory is created (0755: only we may create or
// replace the socket) if missing and the socket file gets `ipc_mode` (default 0666: any local
// process may connect; what it may say is the peer guard's decision, from its credentials).
tl::expected<void, std::string> bind_endpoint(zmq::socket_t& s, const std::string& endpoint,
                                              mode_t ipc_mode = 0666);
tl::expected<void, std::string> connect_endpoint(zmq::socket_t& s, const std::string& endpoint);

// Stamps bodies into messages: source, this process's boot id, a growing sequence, wall time.
// Not thread-safe.
class Stamper {
 public:
  Stamper(std::string source, const Clock& clock);
  proto::Message stamp(proto::Body body);
  const std::string& source() const { return source_; }
  const std::string& boot_id() const { return boot_id_; }
  std::uint64_t last_seq() const { return seq_; }
  void set_next_seq(std::uint64_t next) { seq_ = next - 1; }

 private:
  std::string source_;
  std::string boot_id_;
  std::uint64_t seq_ = 0;
  const Clock& clock_;
};

std::string random_boot_id();

// Sends one message as one frame. Returns false when it would block (DONTWAIT) or the socket
// refuses; never throws.
bool send_message(zmq::socket_t& s, const proto::Message& msg,
                  zmq::send_flags flags = zmq::send_flags::dontwait);

// Decodes a received frame; a rejection is counted in `rejects` and returned as the error.
tl::expected<proto::Message, proto::DecodeError> decode_frame(const zmq::message_t& frame,
                                                              proto::RejectCounter& rejects,
                                                              const proto::Limits& limits = {});

// One message from a ROUTER socket: the sender's identity, whether a REQ client's empty
// delimiter came first (the reply needs one too), and the body frame. A message of more body
// frames is drained and marked not `single` (every message between the daemons is one frame).
struct Routed {
  zmq::message_t identity;
  bool req = false;
  zmq::message_t body;
  bool single = true;
};
// The ZAP User-Id of the connection `frame` came on ("" without one).
std::string user_id_of(const zmq::message_t& frame);
// nullopt when nothing waits (or the socket failed).
std::optional<Routed> recv_routed(zmq::socket_t& router);
// Sends `bytes` back to the sender of `to` (DONTWAIT; a reply that cannot go is dropped).
void reply_routed(zmq::socket_t& router, Routed& to, const std::string& bytes);

// Multipart messages of request/reply paths (request_relay.hpp): one whole message, or an empty
// vector when nothing waits; a message of more than `max_frames` is drained and returned with
// max_frames + 1 frames, for the caller to drop.
std::vector<zmq::message_t> recv_frames(zmq::socket_t& s, std::size_t max_frames);
// Sends every frame (DONTWAIT); false when the first would block or the socket refuses (then
// nothing was sent and `frames` are intact).
bool send_frames(zmq::socket_t& s, std::vector<zmq::message_t>& frames);
// The index of the empty delimiter after the routing envelope (at least one frame), or 0.
std::size_t delimiter_of(const std::vector<zmq::message_t>& frames);

// Serves the commands waiting on a ROUTER socket (at most `max`): each Command goes to `handle`
// with an Ack already addressed to it (ok = true), which it completes; anything else is answered
// ok = false, "rejected: REASON" (a malformed or oversized frame is also counted in `rejects`),
// and the stamped ack goes back to the sender.
using CommandHandler =
    std::function<void(const proto::Message& msg, const proto::Command& command, proto::Ack& ack)>;
void serve_commands(zmq::socket_t& router, proto::RejectCounter& rejects,
                    const proto::Limits& limits, Stamper& stamper, const CommandHandler& handle,
                    int max = 100);

}  // namespace trading_heal::common
