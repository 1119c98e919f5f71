// Many hosts, the model in the centre: one hop of a request/reply path (proto/model_call.hpp).
// A ROUTER `front` (binds) takes requests, a DEALER `back` (connects) passes them on as they are,
// and the replies coming back on `back` go to whoever asked on `front`. Two hops make the path:
// a host's probe (front: its diagnoser, ipc; back: the centre, tcp with CURVE) and the centre's
// exporter (front: the hosts, tcp with CURVE; back: the centre's diagnoser, ipc), which puts the
// sender's host (bound to its key by the allow-list, never what it says) in front of the body.
//
// No request waits for a link: `back` passes only on a live connection (ZMQ_IMMEDIATE), and a
// request it cannot take now is answered at once, `unreachable`, so the asker falls back to its
// rules without waiting out its timeout. A request that is not [envelope..., "", body] is
// dropped and counted. Owned by the loop thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <zmq.hpp>

#include "trading_heal/common/loop.hpp"

namespace trading_heal::common {

class RequestRelay {
 public:
  using Protect = std::function<void(zmq::socket_t&)>;
  struct Options {
    std::string name;   // for logs and replies: "model relay"
    std::string front;  // bound
    std::string back;   // connected
    bool tag_host = false;
    std::string local_host;  // the host of a peer without a key (ipc): this host
    std::int64_t max_bytes = 256 * std::int64_t{1024};
    Protect protect_front{};  // run on each socket before it binds or connects (a peer guard)
    Protect protect_back{};
  };
  // Binds and connects; throws std::runtime_error naming the endpoint that cannot be used.
  RequestRelay(zmq::context_t& ctx, Options opts);
  void attach(Loop& loop);
  zmq::socket_t& back() { return back_; }

  std::uint64_t passed() const { return passed_; }
  std::uint64_t answered() const { return answered_; }  // replies carried back
  std::uint64_t unreachable() const { return unreachable_; }
  std::uint64_t dropped() const { return dropped_; }

 private:
  void on_front();
  void on_back();

  Options opts_;
  zmq::socket_t front_;
  zmq::socket_t back_;
  std::uint64_t passed_ = 0, answered_ = 0, unreachable_ = 0, dropped_ = 0;
};

}  // namespace trading_heal::common
