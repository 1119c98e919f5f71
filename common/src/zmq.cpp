#include "trading_heal/common/zmq.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace trading_heal::common {

zmq::socket_t make_socket(zmq::context_t& ctx, zmq::socket_type type, const SocketOptions& o) {
  zmq::socket_t s(ctx, type);
  s.set(zmq::sockopt::linger, o.linger_ms);
  s.set(zmq::sockopt::maxmsgsize, o.max_msg_size);
  s.set(zmq::sockopt::sndhwm, o.sndhwm);
  s.set(zmq::sockopt::rcvhwm, o.rcvhwm);
  s.set(zmq::sockopt::sndtimeo, o.sndtimeo_ms);
  return s;
}

namespace {
// Nothing on tcp without CURVE (the peer guard sets it up): a last check at the socket itself.
tl::expected<void, std::string> tcp_needs_curve(zmq::socket_t& s, const std::string& endpoint) {
  if (endpoint.rfind("tcp://", 0) == 0 && s.get(zmq::sockopt::mechanism) != ZMQ_CURVE) {
    return tl::unexpected(
        endpoint + ": refused: a tcp:// endpoint needs CURVE (TRADING_HEAL_CURVE_SECRET_KEY_FILE)");
  }
  return {};
}
}  // namespace

tl::expected<void, std::string> bind_endpoint(zmq::socket_t& s, const std::string& endpoint,
                                              mode_t ipc_mode) {
  if (auto r = tcp_needs_curve(s, endpoint); !r) return r;
  std::string path;
  if (endpoint.rfind("ipc://", 0) == 0) {
    path = endpoint.substr(6);
    std::error_code ec;
    auto dir = std::filesystem::path(path).parent_path();
    if (!dir.empty() && !std::filesystem::exists(dir, ec)) {
      std::filesystem::create_directories(dir, ec);
      if (ec) return tl::unexpected("cannot create " + dir.string() + ": " + ec.message());
      ::chmod(dir.c_str(), 0755);  // others may reach the socket; only we may replace it
    }
  }
  try {
    s.bind(endpoint);
  } catch (const zmq::error_t& e) {
    return tl::unexpected("bind " + endpoint + ": " + e.what());
  }
  if (!path.empty() && ::chmod(path.c_str(), ipc_mode) != 0) {
    return tl::unexpected("chmod " + path + ": " + std::strerror(errno));
  }
  return {};
}

tl::expected<void, std::string> connect_endpoint(zmq::socket_t& s, const std::string& endpoint) {
  if (auto r = tcp_needs_curve(s, endpoint); !r) return r;
  try {
    s.connect(endpoint);
  } catch (const zmq::error_t& e) {
    return tl::unexpected("connect " + endpoint + ": " + e.what());
  }
  return {};
}

std::string random_boot_id() {
  std::random_device rd;
  std::uniform_int_distribution<std::uint64_t> dist;
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(dist(rd)),
                static_cast<unsigned long long>(dist(rd)));
  return buf;
}

Stamper::Stamper(std::string source, const Clock& clock)
    : source_(std::move(source)), boot_id_(random_boot_id()), clock_(clock) {}

proto::Message Stamper::stamp(proto::Body body) {
  return proto::make_message(source_, boot_id_, ++seq_, to_epoch_seconds(clock_.wall()),
                             std::move(body));
}

bool send_message(zmq::socket_t& s, const proto::Message& msg, zmq::send_flags flags) {
  const std::string bytes = proto::encode(msg);
  try {
    return s.send(zmq::buffer(bytes), flags).has_value();
  } catch (const zmq::error_t&) {
    return false;
  }
}

tl::expected<proto::Message, proto::DecodeError> decode_frame(const zmq::message_t& frame,
                                                              proto::RejectCounter& rejects,
                                                              const proto::Limits& limits) {
  auto r = proto::decode(std::string_view(frame.data<char>(), frame.size()), limits);
  if (!r) rejects.add(r.error().reason);
  return r;
}

std::string user_id_of(const zmq::message_t& frame) {
  // zmq_msg_gets takes a non-const message but does not change it.
  const char* v = zmq_msg_gets(const_cast<zmq::message_t&>(frame).handle(), "User-Id");
  return v == nullptr ? std::string() : std::string(v);
}

std::vector<zmq::message_t> recv_frames(zmq::socket_t& s, std::size_t max_frames) {
  std::vector<zmq::message_t> frames;
  try {
    while (true) {
      zmq::message_t m;
      if (!s.recv(m, zmq::recv_flags::dontwait)) return {};
      const bool more = m.more();
      if (frames.size() <= max_frames) frames.push_back(std::move(m));
      if (!more) return frames;
    }
  } catch (const zmq::error_t&) {
    return {};
  }
}

bool send_frames(zmq::socket_t& s, std::vector<zmq::message_t>& frames) {
  try {
    for (std::size_t i = 0; i < frames.size(); ++i) {
      const auto flags = i + 1 < frames.size()
                             ? zmq::send_flags::sndmore | zmq::send_flags::dontwait
                             : zmq::send_flags::dontwait;
      if (!s.send(frames[i], flags)) return false;  // only the first frame can block
    }
    return true;
  } catch (const zmq::error_t&) {
    return false;
  }
}

std::size_t delimiter_of(const std::vector<zmq::message_t>& frames) {
  for (std::size_t i = 1; i < frames.size(); ++i) {
    if (frames[i].size() == 0) return i;
  }
  return 0;
}

std::optional<Routed> recv_routed(zmq::socket_t& router) {
  Routed r;
  try {
    while (true) {
      if (!router.recv(r.identity, zmq::recv_flags::dontwait)) return std::nullopt;
      if (r.identity.more()) break;  // a ROUTER always prefixes the identity: be tolerant
    }
    (void)router.recv(r.body, zmq::recv_flags::dontwait);
    if (r.body.more() && r.body.size() == 0) {  // REQ's empty delimiter
      r.req = true;
      (void)router.recv(r.body, zmq::recv_flags::dontwait);
    }
    bool more = r.body.more();
    r.single = !more;
    while (more) {
      zmq::message_t extra;
      (void)router.recv(extra, zmq::recv_flags::dontwait);
      more = extra.more();
    }
  } catch (const zmq::error_t&) {
    return std::nullopt;
  }
  return r;
}

void reply_routed(zmq::socket_t& router, Routed& to, const std::string& bytes) {
  try {
    router.send(to.identity, zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    if (to.req) router.send(zmq::message_t(), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    router.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
  } catch (const zmq::error_t&) {
  }
}

void serve_commands(zmq::socket_t& router, proto::RejectCounter& rejects,
                    const proto::Limits& limits, Stamper& stamper, const CommandHandler& handle,
                    int max) {
  for (int i = 0; i < max; ++i) {
    auto in = recv_routed(router);
    if (!in) return;
    proto::Ack ack;
    ack.ok = false;
    if (!in->single) {
      rejects.add(proto::Reject::kMalformed);
      ack.detail = "rejected: " + std::string(proto::to_string(proto::Reject::kMalformed));
    } else if (auto msg = decode_frame(in->body, rejects, limits); !msg) {
      ack.detail = "rejected: " + std::string(proto::to_string(msg.error().reason));
    } else if (const auto* c = std::get_if<proto::Command>(&msg->body)) {
      ack.of_source = msg->env.source;
      ack.of_boot_id = msg->env.boot_id;
      ack.of_seq = msg->env.seq;
      ack.ok = true;
      handle(*msg, *c, ack);
    } else {
      ack.detail = "rejected: not a command";
    }
    reply_routed(router, *in, proto::encode(stamper.stamp(ack)));
  }
}

}  // namespace trading_heal::common
