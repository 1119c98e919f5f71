#include "trading_heal/common/peer_guard.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>
#include <zmq_addon.hpp>

#include "trading_heal/common/loop.hpp"

namespace trading_heal::common {
namespace {

std::optional<long> number(const std::string& s) {
  if (s.empty() || s.size() > 10 || s.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return std::strtol(s.c_str(), nullptr, 10);
}

}  // namespace

std::string PeerPolicy::describe() const {
  std::string out = "users";
  for (uid_t u : users) out += " " + std::to_string(u);
  out += " groups";
  for (gid_t g : groups) out += " " + std::to_string(g);
  return out;
}

std::optional<PeerCreds> parse_peer_address(const std::string& address) {
  // "localhost:UID:GID:PID" (libzmq's ipc peer address with SO_PEERCRED)
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const auto colon = address.find(':', start);
    parts.push_back(address.substr(start, colon == std::string::npos ? colon : colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  if (parts.size() != 4 || parts[0] != "localhost") return std::nullopt;
  const auto uid = number(parts[1]);
  const auto gid = number(parts[2]);
  const auto pid = number(parts[3]);
  if (!uid || !gid || !pid) return std::nullopt;
  return PeerCreds{static_cast<uid_t>(*uid), static_cast<gid_t>(*gid), static_cast<pid_t>(*pid)};
}

std::vector<gid_t> system_groups_of(const PeerCreds& peer) {
  const uid_t uid = peer.uid;
  std::vector<gid_t> out{peer.gid};
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) return out;
  int n = 64;
  std::vector<gid_t> groups(static_cast<std::size_t>(n));
  if (::getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &n) < 0) {
    groups.resize(static_cast<std::size_t>(n));
    if (::getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &n) < 0) return out;
  }
  groups.resize(static_cast<std::size_t>(n));
  out.insert(out.end(), groups.begin(), groups.end());
  return out;
}

bool peer_allowed(const PeerCreds& creds, const PeerPolicy& policy, GroupsOf groups_of) {
  if (creds.uid == 0 || policy.users.count(creds.uid) != 0) return true;
  if (policy.groups.empty()) return false;
  for (gid_t g : groups_of(creds)) {
    if (policy.groups.count(g) != 0) return true;
  }
  return false;
}

tl::expected<uid_t, std::string> uid_of(const std::string& user) {
  if (auto n = number(user)) return static_cast<uid_t>(*n);
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  const int r = ::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found);
  if (r != 0) return tl::unexpected("cannot look up user " + user + ": " + std::strerror(r));
  if (found == nullptr) return tl::unexpected("no such user: " + user);
  return pw.pw_uid;
}

tl::expected<gid_t, std::string> gid_of(const std::string& group) {
  if (auto n = number(group)) return static_cast<gid_t>(*n);
  std::vector<char> buf(16384);
  struct group gr {};
  struct group* found = nullptr;
  const int r = ::getgrnam_r(group.c_str(), &gr, buf.data(), buf.size(), &found);
  if (r != 0) return tl::unexpected("cannot look up group " + group + ": " + std::strerror(r));
  if (found == nullptr) return tl::unexpected("no such group: " + group);
  return gr.gr_gid;
}

PeerPolicy Identities::allow(std::initializer_list<const char*> roles, bool with_operators) const {
  PeerPolicy p;
  p.users.insert(self);
  for (const char* r : roles) {
    if (auto it = uid.find(r); it != uid.end()) p.users.insert(it->second);
  }
  if (with_operators && operators) p.groups.insert(*operators);
  return p;
}

tl::expected<Identities, ConfigError> resolve_identities(const Config& cfg) {
  Identities ids;
  ids.self = ::getuid();
  for (const char* role : {"probe", "diagnoser", "actuator", "exporter"}) {
    auto it = cfg.peers.find(role);
    if (it == cfg.peers.end()) {
      ids.uid[role] = ids.self;
      continue;
    }
    auto u = uid_of(it->second);
    if (!u)
      return tl::unexpected(
          ConfigError{"TRADING_HEAL_PEERS", it->first + "=" + it->second, u.error()});
    ids.uid[role] = *u;
  }
  if (!cfg.operators_group.empty()) {
    auto g = gid_of(cfg.operators_group);
    if (!g)
      return tl::unexpected(
          ConfigError{"TRADING_HEAL_OPERATORS_GROUP", cfg.operators_group, g.error()});
    ids.operators = *g;
  }
  return ids;
}

PeerGuard::PeerGuard(zmq::context_t& ctx, std::string component, GroupsOf groups_of)
    : component_(std::move(component)),
      groups_of_(groups_of),
      zap_(ctx, zmq::socket_type::rep),
      ctx_(ctx) {
  zap_.set(zmq::sockopt::linger, 0);
  zap_.bind("inproc://zeromq.zap.01");
  timer_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (timer_fd_ < 0)
    throw std::runtime_error(std::string("timerfd_create: ") + std::strerror(errno));
}

PeerGuard::~PeerGuard() {
  if (timer_fd_ >= 0) ::close(timer_fd_);
}

void PeerGuard::watch_connection(zmq::socket_t& socket, const std::string& endpoint) {
  outbound_.push_back({&socket, socket.get(zmq::sockopt::zap_domain), endpoint});
}

void PeerGuard::schedule_reconnect(const std::string& domain, std::chrono::milliseconds delay) {
  bool any = false;
  const auto at = std::chrono::steady_clock::now() + delay;
  for (auto& o : outbound_) {
    if (o.domain != domain) continue;
    if (!o.due || at > o.not_before) o.not_before = at;
    any = o.due = true;
  }
  if (any) arm_timer();
}

void PeerGuard::arm_timer() {
  if (timer_armed_) return;
  itimerspec in{};
  in.it_value.tv_sec = 1;
  if (::timerfd_settime(timer_fd_, 0, &in, nullptr) == 0) timer_armed_ = true;
}

void PeerGuard::on_timer() {
  std::uint64_t expirations = 0;
  while (::read(timer_fd_, &expirations, sizeof expirations) > 0) {
  }
  timer_armed_ = false;
  const auto now = std::chrono::steady_clock::now();
  for (auto& o : outbound_) {
    if (!o.due) continue;
    if (now < o.not_before) {
      arm_timer();
      continue;
    }
    if (auto it = last_request_.find(o.domain);
        it != last_request_.end() && now - it->second < std::chrono::milliseconds(900)) {
      arm_timer();  // libzmq is still retrying (the refused peer is there): later
      continue;
    }
    o.due = false;
    // The refused connection may be gone already (libzmq ended it) or still retrying (the
    // peer hung up first): either way, a fresh one.
    try {
      o.socket->disconnect(o.endpoint);
    } catch (const zmq::error_t&) {
    }
    try {
      o.socket->connect(o.endpoint);
      ++reconnects_;
      spdlog::debug(
          "peer guard: connecting again after a refused peer component={} socket={} "
          "endpoint={}",
          component_, o.domain, o.endpoint);
    } catch (const zmq::error_t& e) {
      spdlog::warn("peer guard: cannot connect again component={} socket={} endpoint={}: {}",
                   component_, o.domain, o.endpoint, e.what());
    }
  }
}

void PeerGuard::protect(zmq::socket_t& socket, const std::string& domain, PeerPolicy policy,
                        const std::string& endpoint, Side side) {
  socket.set(zmq::sockopt::zap_domain, domain);
  policies_[domain] = std::move(policy);
  if (endpoint.rfind("tcp://", 0) == 0) secure_tcp(socket, domain, endpoint, side);
}

void PeerGuard::attach(Loop& loop) {
  loop_ = &loop;
  loop.on_readable(zap_, [this] { on_request(); });
  loop.on_fd(timer_fd_, [this] { on_timer(); });
  for (auto& m : monitors_) loop.on_readable(*m.socket, [this] { on_monitor(); });
}

void PeerGuard::on_request() {
  for (int i = 0; i < 256; ++i) {
    std::vector<zmq::message_t> req;
    try {
      if (!zmq::recv_multipart(zap_, std::back_inserter(req), zmq::recv_flags::dontwait)) return;
    } catch (const zmq::error_t&) {
      return;
    }
    // ZAP request (RFC 27): version, request id, domain, address, routing id, mechanism, ...
    const std::string request_id = req.size() > 1 ? req[1].to_string() : std::string();
    const std::string domain = req.size() > 2 ? req[2].to_string() : std::string();
    const std::string address = req.size() > 3 ? req[3].to_string() : std::string();
    last_request_[domain] = std::chrono::steady_clock::now();
    const bool curve = curve_domains_.count(domain) != 0;
    std::string user;
    const bool ok =
        req.size() >= 6 && req[0].to_string() == "1.0" &&
        (curve ? judge_key(req, domain, address, user) : judge_credentials(domain, address, user));
    if (ok) {
      ++allowed_;
    } else {
      ++refused_;
      user.clear();
    }
    // The user id becomes every message's "User-Id": the peer's uid, or the host bound to its key.
    std::vector<zmq::const_buffer> reply = {
        zmq::str_buffer("1.0"),
        zmq::buffer(request_id),
        ok ? zmq::str_buffer("200") : zmq::str_buffer("400"),
        ok ? zmq::str_buffer("OK")
           : (curve ? zmq::str_buffer("key not allowed") : zmq::str_buffer("peer not allowed")),
        zmq::buffer(user),
        zmq::str_buffer("")};
    try {
      (void)zmq::send_multipart(zap_, reply, zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
    }
  }
}

bool PeerGuard::judge_credentials(const std::string& domain, const std::string& address,
                                  std::string& user) {
  const auto creds = parse_peer_address(address);
  const auto policy = policies_.find(domain);
  if (creds) user = std::to_string(creds->uid);
  if (creds && policy != policies_.end() && peer_allowed(*creds, policy->second, groups_of_)) {
    return true;
  }
  schedule_reconnect(domain);
  const uid_t uid = creds ? creds->uid : static_cast<uid_t>(-1);
  if (logged_.size() < 1024 && logged_.emplace(domain, uid).second) {
    spdlog::warn(
        "peer refused component={} socket={} uid={} gid={} pid={} allowed=\"{}\" "
        "refused={}",
        component_, domain, creds ? std::to_string(creds->uid) : "?",
        creds ? std::to_string(creds->gid) : "?",
        creds ? std::to_string(creds->pid) : address.substr(0, 64),
        policy != policies_.end() ? policy->second.describe() : "unknown socket", refused_ + 1);
  }
  return false;
}

}  // namespace trading_heal::common
