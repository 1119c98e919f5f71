// The peer guard's CURVE half: tcp:// sockets, the allow-list of host keys, and the monitors
// that count what is refused before any ZAP request (peer_guard.hpp).
#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>
#include <zmq_addon.hpp>

#include "trading_heal/common/loop.hpp"
#include "trading_heal/common/peer_guard.hpp"

namespace trading_heal::common {

void PeerGuard::secure_tcp(zmq::socket_t& socket, const std::string& domain,
                           const std::string& endpoint, Side side) {
  if (!curve_) {
    throw std::runtime_error(endpoint + " (socket " + domain +
                             "): tcp:// needs CURVE keys: set TRADING_HEAL_CURVE_SECRET_KEY_FILE "
                             "(trading-heal-ctl keygen)");
  }
  // Dead links are seen within seconds: a ping every second, the link dropped after 3 s without
  // traffic; the peer is told to drop it after 6 s.
  socket.set(zmq::sockopt::heartbeat_ivl, 1000);
  socket.set(zmq::sockopt::heartbeat_timeout, 3000);
  socket.set(zmq::sockopt::heartbeat_ttl, 6000);
  socket.set(zmq::sockopt::curve_secretkey, curve_->own.secret_z85);
  socket.set(zmq::sockopt::curve_publickey, curve_->own.public_z85);
  if (side == Side::kConnect) {
    if (curve_->server_public_z85.empty()) {
      throw std::runtime_error(endpoint + " (socket " + domain +
                               "): connecting over tcp:// needs the other side's public key: set "
                               "TRADING_HEAL_CURVE_SERVER_KEY_FILE");
    }
    socket.set(zmq::sockopt::curve_serverkey, curve_->server_public_z85);
    // A server that refuses our key ends the connection for good (libzmq does not retry a
    // refused handshake): the guard connects again every kRefusedRetry, so that a host whose
    // key the centre adds later (hosts.d, SIGHUP) is heard without a restart.
    monitor(socket, domain, true);
    return;
  }
  socket.set(zmq::sockopt::curve_server, true);
  curve_domains_.insert(domain);
  monitor(socket, domain, false);
}

tl::expected<std::optional<CurveSetup>, ConfigError> load_curve_setup(const Config& cfg) {
  if (cfg.curve_secret_key_file.empty()) return std::optional<CurveSetup>{};
  CurveSetup setup;
  auto own = read_secret_key_file(cfg.curve_secret_key_file);
  if (!own) {
    return tl::unexpected(
        ConfigError{"TRADING_HEAL_CURVE_SECRET_KEY_FILE", cfg.curve_secret_key_file, own.error()});
  }
  setup.own = std::move(*own);
  if (!cfg.curve_server_key_file.empty()) {
    auto server = read_public_key_file(cfg.curve_server_key_file);
    if (!server) {
      return tl::unexpected(ConfigError{"TRADING_HEAL_CURVE_SERVER_KEY_FILE",
                                        cfg.curve_server_key_file, server.error()});
    }
    setup.server_public_z85 = *server;
  }
  setup.hosts_dir = cfg.hosts_dir;
  return std::optional<CurveSetup>{std::move(setup)};
}

void PeerGuard::configure(const Config& cfg) {
  auto setup = load_curve_setup(cfg);
  if (!setup) throw std::runtime_error("configuration error: " + setup.error().to_string());
  if (*setup) use_curve(std::move(**setup));
}

void PeerGuard::use_curve(CurveSetup setup) {
  curve_ = std::move(setup);
  reload_hosts();
}

void PeerGuard::reload_hosts() {
  if (!curve_ || curve_->hosts_dir.empty()) return;
  hosts_ = HostAllowList::load(curve_->hosts_dir);
  for (const auto& p : hosts_.problems()) spdlog::warn("allow-list: {}", p);
  logged_keys_.clear();
  spdlog::info("allow-list loaded component={} dir={} hosts={}", component_, curve_->hosts_dir,
               hosts_.size());
}

void PeerGuard::monitor(zmq::socket_t& socket, const std::string& domain, bool client) {
  static std::atomic<unsigned> next{0};
  const std::string ep = "inproc://trading-heal.guard-monitor." + std::to_string(next++);
  constexpr int kEvents = ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED |
                          ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                          ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
  if (zmq_socket_monitor(socket.handle(), ep.c_str(), kEvents) != 0) {
    throw std::runtime_error("cannot monitor the " + domain +
                             " socket: " + zmq_strerror(zmq_errno()));
  }
  auto m = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::pair);
  m->set(zmq::sockopt::linger, 0);
  m->connect(ep);
  if (loop_ != nullptr) loop_->on_readable(*m, [this] { on_monitor(); });
  monitors_.push_back({std::move(m), domain, client, {}});
}

// One monitor event of a tcp server socket: why a connection was refused before any ZAP request,
// or nullptr. `unresolved` holds the accepted connections without a handshake result yet.
const char* PeerGuard::classify(std::deque<std::uint32_t>& unresolved, MonitorEvent ev) {
  const std::uint32_t value = ev.value;
  switch (ev.id) {
    case ZMQ_EVENT_ACCEPTED:
      unresolved.push_back(value);
      return nullptr;
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:  // a ZAP refusal: counted by on_request
      if (!unresolved.empty()) unresolved.pop_front();
      return nullptr;
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
      if (!unresolved.empty()) unresolved.pop_front();
      return "handshake failed (a client without CURVE, or a broken one)";
    case ZMQ_EVENT_DISCONNECTED:
      if (auto it = std::find(unresolved.begin(), unresolved.end(), value);
          it != unresolved.end()) {
        unresolved.erase(it);
        return "closed before any handshake (not ZMTP)";
      }
      return nullptr;
    default:
      return nullptr;
  }
}

void PeerGuard::on_client_event(const std::string& domain, std::uint16_t id,
                                const std::string& endpoint) {
  if (id != ZMQ_EVENT_HANDSHAKE_FAILED_AUTH && id != ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
      id != ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
    return;
  }
  ++refused_by_server_;
  if (logged_refusals_.insert(domain).second) {
    spdlog::warn(
        "the server refused this component's key component={} socket={} endpoint={} (is this "
        "host's .pub in the other side's hosts.d?); trying again every {} s",
        component_, domain, endpoint, kRefusedRetry.count());
  }
  schedule_reconnect(domain, kRefusedRetry);
}

void PeerGuard::on_monitor() {
  for (auto& m : monitors_) {
    for (int i = 0; i < 256; ++i) {
      std::vector<zmq::message_t> ev;
      try {
        if (!zmq::recv_multipart(*m.socket, std::back_inserter(ev), zmq::recv_flags::dontwait))
          break;
      } catch (const zmq::error_t&) {
        break;
      }
      if (ev.empty() || ev[0].size() < 6) continue;
      std::uint16_t id = 0;
      std::uint32_t value = 0;
      std::memcpy(&id, ev[0].data(), sizeof id);
      std::memcpy(&value, static_cast<const char*>(ev[0].data()) + 2, sizeof value);
      if (m.client) {
        on_client_event(m.domain, id, ev.size() > 1 ? ev[1].to_string() : std::string("?"));
        continue;
      }
      const char* why = classify(m.unresolved, {id, value});
      if (why == nullptr) continue;
      ++handshake_failures_;
      ++refused_;
      if (!logged_handshake_) {
        logged_handshake_ = true;
        spdlog::warn(
            "peer refused component={} endpoint={} reason=\"{}\" refused={} (further "
            "ones only counted)",
            component_, ev.size() > 1 ? ev[1].to_string() : std::string("?"), why, refused_);
      }
    }
    while (m.unresolved.size() > 4096) m.unresolved.pop_front();  // bounded, whatever happens
  }
}

bool PeerGuard::curve_allowed(const std::vector<zmq::message_t>& req, std::string& host) {
  // CURVE request: ... mechanism "CURVE", then the client's 32-byte long-term public key.
  if (req.size() < 7 || req[5].to_string() != "CURVE" || req[6].size() != 32) return false;
  CurveKey key{};
  std::memcpy(key.data(), req[6].data(), key.size());
  if (auto h = hosts_.host_of(key)) {
    host = "host:" + *h;  // the User-Id of its messages (host_of_peer)
    return true;
  }
  host = encode_curve_key(key);  // for the log line only
  return false;
}

bool PeerGuard::judge_key(const std::vector<zmq::message_t>& req, const std::string& domain,
                          const std::string& address, std::string& host) {
  if (curve_allowed(req, host)) return true;
  const std::string key = host.empty() ? std::string("none") : host;
  if (logged_keys_.size() < 1024 && logged_keys_.insert(domain + "/" + key).second) {
    spdlog::warn(
        "peer refused component={} socket={} address={} key={} reason=\"key not in the "
        "allow-list {}\" refused={}",
        component_, domain, address.substr(0, 64), key, curve_ ? curve_->hosts_dir : std::string(),
        refused_ + 1);
  }
  return false;
}

}  // namespace trading_heal::common
