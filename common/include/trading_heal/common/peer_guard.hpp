// Who may speak on a socket, decided from the kernel's view of the peer, not from anything the
// peer writes. libzmq (4.3) asks a ZAP handler (inproc://zeromq.zap.01) about every new
// connection of a socket that has a ZAP domain, on either side (a SUB connecting to a PUB asks
// about the publisher), and for ipc:// gives it the peer's SO_PEERCRED as the address
// "localhost:UID:GID:PID". The guard answers from a per-domain policy: the allowed users, the
// allowed groups (the peer user's primary and supplementary groups, from the user database),
// root always. A refused peer never completes its handshake: no message of it is delivered.
// Each refusal is counted; the first of each (domain, uid) is logged.
// One guard per zmq::context_t (the ZAP endpoint is per context). Not thread-safe: owned and
// served by the loop thread (poll socket(), call on_request()).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <tl/expected.hpp>
#include <zmq.hpp>

#include "trading_heal/common/config.hpp"
#include "trading_heal/common/curve.hpp"

namespace trading_heal::common {

struct PeerPolicy {
  std::set<uid_t> users;
  std::set<gid_t> groups;        // a member of one of these (primary or supplementary) is allowed
  std::string describe() const;  // "users 998,997 groups 1001"
};

// The kernel's credentials of an ipc:// peer from the ZAP address ("localhost:UID:GID:PID");
// nullopt for anything else (tcp peers carry no credentials).
struct PeerCreds {
  uid_t uid = 0;
  gid_t gid = 0;
  pid_t pid = 0;
};
std::optional<PeerCreds> parse_peer_address(const std::string& address);

// Whether `creds` may speak under `policy`; `groups_of` gives the peer's groups (primary and
// supplementary; injectable for tests).
using GroupsOf = std::vector<gid_t> (*)(const PeerCreds& peer);
bool peer_allowed(const PeerCreds& creds, const PeerPolicy& policy, GroupsOf groups_of);
// The user database's groups of the peer's uid (getpwuid_r + getgrouplist); {its gid} when
// unknown.
std::vector<gid_t> system_groups_of(const PeerCreds& peer);

// A user or group name to its id, for the configuration ("trading-heal-probe" -> 997).
tl::expected<uid_t, std::string> uid_of(const std::string& user);
tl::expected<gid_t, std::string> gid_of(const std::string& group);

// The components' users and the operators' group, resolved once at start from the
// configuration (TRADING_HEAL_PEERS, TRADING_HEAL_OPERATORS_GROUP). A component the
// configuration does not name runs as this process's own user (one user runs them all).
struct Identities {
  std::map<std::string, uid_t> uid;  // probe, diagnoser, actuator, exporter
  std::optional<gid_t> operators;
  uid_t self = 0;
  // The policy of a socket the named components (and the operators, when `operators`) may use.
  PeerPolicy allow(std::initializer_list<const char*> roles, bool operators = false) const;
};
tl::expected<Identities, ConfigError> resolve_identities(const Config& cfg);

// CURVE for tcp:// endpoints: this component's key pair; for a socket that connects, the public
// key of the side it connects to; for a socket that binds, the allow-list directory.
struct CurveSetup {
  CurveKeyPair own;
  std::string server_public_z85;  // empty: this component connects to nothing over tcp
  std::string hosts_dir;
};
// From the configuration (TRADING_HEAL_CURVE_SECRET_KEY_FILE, ..._SERVER_KEY_FILE,
// TRADING_HEAL_HOSTS_DIR); nullopt when no secret key is configured. The error names the setting.
tl::expected<std::optional<CurveSetup>, ConfigError> load_curve_setup(const Config& cfg);

enum class Side { kBind, kConnect };

class Loop;

class PeerGuard {
 public:
  // `component`: for the log lines ("actuator").
  PeerGuard(zmq::context_t& ctx, std::string component, GroupsOf groups_of = system_groups_of);
  PeerGuard(const PeerGuard&) = delete;
  PeerGuard& operator=(const PeerGuard&) = delete;

  // Puts `socket` under `domain`'s policy (before it binds or connects). For a tcp:// `endpoint`
  // the socket speaks CURVE (server when it binds, client when it connects) with ZMTP heartbeats,
  // and the policy is the allow-list (a peer is admitted by its public key, not its uid); without
  // use_curve() a tcp:// endpoint throws (nothing on tcp without CURVE).
  void protect(zmq::socket_t& socket, const std::string& domain, PeerPolicy policy,
               const std::string& endpoint = {}, Side side = Side::kBind);
  // CURVE keys for tcp endpoints; loads the allow-list (its problems are logged).
  void use_curve(CurveSetup setup);
  // use_curve() from the configuration when it names a secret key file; throws
  // std::runtime_error naming the setting when a key file cannot be used.
  void configure(const Config& cfg);
  // Reads the allow-list again (SIGHUP). Admitted connections stay; new handshakes use the new
  // list.
  void reload_hosts();
  std::size_t hosts_admitted() const { return hosts_.size(); }
  // Registers the guard's sockets and fds with the loop (ZAP requests, the reconnect timer, the
  // handshake monitors of tcp servers, including those protected later).
  void attach(Loop& loop);
  // Connections refused before any ZAP request: a client without CURVE (a failed handshake), or
  // bytes that are not ZMTP (closed by libzmq before any handshake), seen by a monitor of each
  // tcp server socket; also counted in refused().
  std::uint64_t handshake_failures() const { return handshake_failures_; }
  // Handshakes of our CURVE client sockets the server refused (our key not admitted there).
  std::uint64_t refused_by_server() const { return refused_by_server_; }
  static constexpr std::chrono::seconds kRefusedRetry{5};
  // Drains the handshake monitors (attach() does it from the loop).
  void on_monitor();
  zmq::socket_t& socket() { return zap_; }  // readable when a request waits
  // Answers every waiting request.
  void on_request();
  std::uint64_t refused() const { return refused_; }
  std::uint64_t allowed() const { return allowed_; }

  // Remembers that the protected `socket` has connected to `endpoint`. libzmq treats a refused
  // handshake as a protocol error, and a connecting socket does not retry after one: a peer
  // refused at that endpoint (someone else's process bound at the probe's path) would leave the
  // socket deaf for good, even after the right peer binds there again. So after a refusal in the
  // socket's domain the guard connects it again, once no handshake has been asked about in that
  // domain for a second (a connection torn down in the middle of its ZAP exchange can keep
  // zmq_ctx_term waiting; while libzmq itself keeps retrying a squatter, it is left to do so).
  void watch_connection(zmq::socket_t& socket, const std::string& endpoint);
  int timer_fd() const { return timer_fd_; }  // readable when a connection is due again
  void on_timer();
  std::uint64_t reconnects() const { return reconnects_; }
  ~PeerGuard();

 private:
  struct Outbound {
    zmq::socket_t* socket;
    std::string domain;
    std::string endpoint;
    bool due = false;
    std::chrono::steady_clock::time_point not_before{};
  };
  // Connects the watched sockets of `domain` again, not before `delay` from now.
  void schedule_reconnect(const std::string& domain,
                          std::chrono::milliseconds delay = std::chrono::milliseconds(0));
  void arm_timer();

  std::string component_;
  GroupsOf groups_of_;
  zmq::socket_t zap_;
  int timer_fd_ = -1;
  bool timer_armed_ = false;
  std::vector<Outbound> outbound_;
  std::map<std::string, std::chrono::steady_clock::time_point> last_request_;  // per domain
  std::uint64_t reconnects_ = 0;
  std::map<std::string, PeerPolicy> policies_;
  std::set<std::pair<std::string, uid_t>> logged_;
  std::uint64_t refused_ = 0;
  std::uint64_t allowed_ = 0;
  zmq::context_t& ctx_;
  std::optional<CurveSetup> curve_;
  HostAllowList hosts_;
  std::set<std::string> curve_domains_;
  struct Monitor {
    std::unique_ptr<zmq::socket_t> socket;
    std::string domain;
    bool client = false;  // a CURVE client: the server may refuse our key
    // Accepted connections (fds, in accept order) without a handshake result yet. libzmq's
    // events name the fd on accept and disconnect only, so a result resolves the oldest one: the
    // count is exact when handshakes end in the order they began, and never lost otherwise.
    std::deque<std::uint32_t> unresolved;
  };
  std::vector<Monitor> monitors_;
  Loop* loop_ = nullptr;
  std::uint64_t handshake_failures_ = 0;
  std::uint64_t refused_by_server_ = 0;
  std::set<std::string> logged_refusals_;  // client sockets whose refusal was logged
  std::set<std::string> logged_keys_;
  bool logged_handshake_ = false;

  // Whether a ZAP request may connect, with the user id to give it (the host bound to the key,
  // or the peer's uid); a refusal is logged the first time per (socket, key or uid).
  bool judge_key(const std::vector<zmq::message_t>& req, const std::string& domain,
                 const std::string& address, std::string& host);
  bool judge_credentials(const std::string& domain, const std::string& address, std::string& user);
  void secure_tcp(zmq::socket_t& socket, const std::string& domain, const std::string& endpoint,
                  Side side);
  void monitor(zmq::socket_t& socket, const std::string& domain, bool client);
  // A handshake event of a CURVE client socket: a refusal connects it again later.
  void on_client_event(const std::string& domain, std::uint16_t id, const std::string& endpoint);
  struct MonitorEvent {  // the first frame of a socket monitor's event
    std::uint16_t id = 0;
    std::uint32_t value = 0;
  };
  static const char* classify(std::deque<std::uint32_t>& unresolved, MonitorEvent ev);
  bool curve_allowed(const std::vector<zmq::message_t>& req, std::string& host);
};

}  // namespace trading_heal::common
