#include "trading_heal/common/request_relay.hpp"

#include <stdexcept>
#include <vector>

#include <spdlog/spdlog.h>

#include "trading_heal/common/curve.hpp"
#include "trading_heal/common/zmq.hpp"
#include "trading_heal/proto/model_call.hpp"

namespace trading_heal::common {
namespace {

constexpr std::size_t kMaxFrames = 8;  // envelope (one identity per hop), delimiter, host, body
constexpr int kBatch = 100;

}  // namespace

RequestRelay::RequestRelay(zmq::context_t& ctx, Options opts)
    : opts_(std::move(opts)),
      front_(make_socket(ctx, zmq::socket_type::router, {.max_msg_size = opts_.max_bytes})),
      back_(make_socket(ctx, zmq::socket_type::dealer, {.max_msg_size = opts_.max_bytes})) {
  back_.set(zmq::sockopt::immediate, 1);
  if (opts_.protect_front) opts_.protect_front(front_);
  if (opts_.protect_back) opts_.protect_back(back_);
  // Used once: what they captured need not outlive the constructor.
  opts_.protect_front = nullptr;
  opts_.protect_back = nullptr;
  if (auto r = bind_endpoint(front_, opts_.front); !r) {
    throw std::runtime_error("cannot bind the " + opts_.name + " endpoint " + opts_.front + ": " +
                             r.error());
  }
  if (auto r = connect_endpoint(back_, opts_.back); !r) {
    throw std::runtime_error("cannot connect the " + opts_.name + " to " + opts_.back + ": " +
                             r.error());
  }
  spdlog::info("{} from={} to={} tag_host={}", opts_.name, opts_.front, opts_.back, opts_.tag_host);
}

void RequestRelay::attach(Loop& loop) {
  loop.on_readable(front_, [this] { on_front(); });
  loop.on_readable(back_, [this] { on_back(); });
}

void RequestRelay::on_front() {
  for (int i = 0; i < kBatch; ++i) {
    auto frames = recv_frames(front_, kMaxFrames);
    if (frames.empty()) return;
    const std::size_t d = delimiter_of(frames);
    if (frames.size() > kMaxFrames || d == 0 || d + 2 != frames.size()) {
      ++dropped_;  // not [envelope..., "", body]
      continue;
    }
    const std::string body = frames.back().to_string();
    if (opts_.tag_host) {
      const std::string host = host_of_peer(user_id_of(frames.back()).c_str(), opts_.local_host);
      frames.insert(frames.begin() + static_cast<std::ptrdiff_t>(d) + 1, zmq::message_t(host));
    }
    if (send_frames(back_, frames)) {
      ++passed_;
      continue;
    }
    // Nothing was sent (the first frame is the one that blocks): answer for the next hop.
    ++unreachable_;
    frames.resize(d + 1);
    frames.emplace_back(
        proto::unanswered_reply(body, "unreachable", opts_.name + ": no link to " + opts_.back));
    (void)send_frames(front_, frames);
  }
}

void RequestRelay::on_back() {
  for (int i = 0; i < kBatch; ++i) {
    auto frames = recv_frames(back_, kMaxFrames);
    if (frames.empty()) return;
    if (frames.size() > kMaxFrames || delimiter_of(frames) == 0) {
      ++dropped_;
      continue;
    }
    if (send_frames(front_, frames)) ++answered_;
  }
}

}  // namespace trading_heal::common
