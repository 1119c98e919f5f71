// Configuration of every component: the environment (the settings table, common/src/settings.cpp)
// plus an optional agents file. Loading validates everything and names the variable and the bad
// value on error.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <tl/expected.hpp>

namespace trading_heal::common {

using Seconds = std::chrono::duration<double>;
using std::chrono::milliseconds;

// One supervised agent. The unit is always `crypto-agent@<instance>.service`: the instance is
// the only part that comes from configuration, and it is validated, because it ends up in the
// name of a unit the actuator may restart.
struct AgentSpec {
  std::string instance;         // BTC_USDT or BTC_USDT_conservative
  std::string unit;             // crypto-agent@BTC_USDT.service
  std::string symbol;           // BTC-USDT
  std::string profile;          // default
  std::string process_pattern;  // optional regex over /proc/PID/cmdline (args joined by ' ')
  std::string heartbeat_path;   // /tmp/crypto_agent_BTC_USDT_heartbeat
  bool enabled = true;
};

enum class SystemdScope { kSystem, kUser };
enum class LlmApi { kOllama, kOpenAi };
enum class RestartBackend { kDbus, kSystemctl };

struct OllamaConfig {
  bool enabled = true;
  std::string host = "http://127.0.0.1:11434";
  std::string model = "qwen2.5-coder:7b";
  milliseconds timeout{30000};
  LlmApi api = LlmApi::kOllama;
  std::string keep_alive = "30m";
  std::size_t max_answer_bytes = 64 * std::size_t{1024};
};

struct PostgresConfig {
  std::string host = "127.0.0.1";
  std::string port = "5433";
  std::string user = "postgres";
  std::string password;  // no default, ever
  std::string db = "postgres";
  std::string database_url;  // wins over the fields above when set
  // A libpq connection string; never logged (it may hold the password). connect_timeout in s.
  std::string conninfo(int connect_timeout_s) const;
  // The same without the password, for logs.
  std::string describe() const;
};

// ZeroMQ endpoints. The static side binds (see proto/PROTOCOL.md).
struct Endpoints {
  std::string health;             // probe PUB (binds)
  std::string diagnoser_pub;      // diagnoser PUB (binds): heartbeats, diagnoses as state
  std::string actuator_pub;       // actuator PUB (binds): heartbeats, incident state
  std::string diagnosis;          // actuator ROUTER (binds): reliable diagnoses from diagnoser
  std::string events;             // exporter ROUTER (binds): reliable audit events
  std::string actuator_control;   // actuator ROUTER (binds): ctl commands
  std::string diagnoser_control;  // diagnoser ROUTER (binds): diagnose-now commands
  // Many hosts: the centre's state collector (the exporter's SUB binds; each host's PUBs connect
  // and send their state there too). Empty: one host.
  std::string state;
  // Many hosts: the probe's ROUTER (binds) taking the host's actuator's and diagnoser's records,
  // forwarded to the centre (the actuator never touches the network). Empty: one host.
  std::string relay;
  // Many hosts: the centre's orders to the hosts (fleet-wide hold, canary host): the centre's
  // exporter PUB binds, each host's probe SUB connects and passes them to its actuator. Empty:
  // each host decides alone.
  std::string fleet;
  // Many hosts, the model in the centre (docs/operations.md "Many hosts"): the centre's exporter
  // binds `analysis` (tcp, CURVE) and passes the hosts' model requests to the centre's diagnoser
  // on `model` (which that diagnoser binds); a host's probe binds `model_relay` and passes its
  // diagnoser's requests to `analysis`. Empty: each diagnoser asks OLLAMA_HOST itself.
  std::string analysis;
  std::string model;
  std::string model_relay;
  // Where the actuator's and the diagnoser's records go: the exporter, or the probe's relay.
  const std::string& records() const { return relay.empty() ? events : relay; }
  // Whose user receives them there.
  const char* records_peer() const { return relay.empty() ? "exporter" : "probe"; }
  std::vector<std::string> publishers() const { return {health, diagnoser_pub, actuator_pub}; }
};

struct Config {
  std::vector<AgentSpec> agents;
  std::string host;  // this host's name in records (TRADING_HEAL_HOST; the kernel's by default)
  bool agents_listed = false;  // TRADING_HEAL_AGENTS(_FILE) given, not the default list
  SystemdScope scope = SystemdScope::kSystem;
  std::string runtime_dir = "/run/trading-heal";
  std::string data_dir = "/var/lib/trading-heal";
  std::string heartbeat_dir = "/tmp";
  std::string proc_root = "/proc";  // where the probe reads processes (tests: fixtures)
  milliseconds interval{30000};
  // The fixed stall threshold. With TRADING_HEAL_STALL_THRESHOLD=auto each agent's is learned
  // from its history (probe/learned_threshold.hpp) within [stall_threshold_min,
  // stall_threshold_max], and this one, 600 s clamped to those bounds, stands for an agent until
  // its history is enough.
  milliseconds stall_threshold{600000};
  bool stall_threshold_auto = false;
  milliseconds stall_threshold_min{300000};
  milliseconds stall_threshold_max{3600000};
  int consecutive_threshold = 2;
  int diagnose_after = 1;
  milliseconds confirm_interval{2000};
  int exhausted_after = 6;
  int max_restarts = 3;
  int fleet_max_restarts = 10;
  milliseconds cooldown{60000};
  milliseconds diagnosis_wait{17000};
  milliseconds backoff_max{900000};
  milliseconds stable_after{600000};
  milliseconds recovery_grace{0};  // 0 = derived: 2 intervals + stall threshold cap
  // A (re)started agent may spend this long bootstrapping before its first decision.
  milliseconds startup_grace{120000};
  milliseconds restart_timeout{30000};  // restart job plus verification of the new MainPID
  int global_min_agents = 3;
  milliseconds global_window{60000};
  int diagnose_workers = 2;
  milliseconds diagnosis_cache_ttl{3600000};
  // The rule classifier's table: the shipped file ("" = next to the binary,
  // ../share/trading-heal/rules/trading-heal.rules) and the operator's extensions.
  std::string rules_file;
  std::string rules_dir = "/etc/trading-heal/rules.d";
  // Who runs each component (TRADING_HEAL_PEERS=probe=USER,diagnoser=USER,...; a component not
  // named runs as the reader's own user) and the operators' group (TRADING_HEAL_OPERATORS_GROUP):
  // what each daemon's peer guard allows on each of its sockets.
  std::map<std::string, std::string> peers;
  std::string operators_group;
  // CURVE for tcp:// endpoints (between hosts): this component's secret key file
  // (TRADING_HEAL_CURVE_SECRET_KEY_FILE, from trading-heal-ctl keygen), the public key of the side
  // it connects to (TRADING_HEAL_CURVE_SERVER_KEY_FILE), and the allow-list of the keys that may
  // connect to it (TRADING_HEAL_HOSTS_DIR, one NAME.pub per host; re-read on SIGHUP).
  std::string curve_secret_key_file;
  std::string curve_server_key_file;
  std::string hosts_dir = "/etc/trading-heal/hosts.d";
  bool dry_run = false;
  bool shadow = false;  // TRADING_HEAL_MODE=shadow (implies dry_run)
  std::string log_level = "info";
  std::string metrics_listen = "0.0.0.0:9120";
  std::string api_listen = "127.0.0.1:9121";
  std::string api_token_file;
  // An API reachable from other hosts needs a token unless this is set on purpose.
  bool api_allow_anonymous = false;
  // Host header names the API answers to besides IP literals and localhost (DNS rebinding).
  std::vector<std::string> api_hosts;
  std::uint64_t audit_max_bytes = 64ULL * 1024 * 1024;
  int audit_keep = 5;
  RestartBackend restart_backend = RestartBackend::kDbus;
  std::string pre_restart_hook;
  std::string post_restart_hook;
  milliseconds hook_timeout{10000};
  std::size_t max_message_bytes = 256 * std::size_t{1024};
  OllamaConfig ollama;
  PostgresConfig pg;
  Endpoints endpoints;

  const AgentSpec* find_agent(const std::string& instance) const;
  // The longest stall threshold any agent may have: the fixed one, or with auto the maximum (for
  // what must hold whatever an agent learned: the recovery grace, the probe's search window).
  milliseconds largest_stall_threshold() const {
    return stall_threshold_auto ? std::max(stall_threshold_max, stall_threshold) : stall_threshold;
  }
};

struct ConfigError {
  std::string variable;  // e.g. TRADING_HEAL_INTERVAL, or the agents file path
  std::string value;
  std::string message;
  std::string to_string() const;  // "TRADING_HEAL_INTERVAL=0: must be > 0"
};

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup process_env();

tl::expected<Config, ConfigError> load_config(const EnvLookup& env);

// The settings with a secret that are set in `env` but belong to another component (the
// database's are the probe's, the model's address the diagnoser's): a shared env file that
// still holds them. Names only, never values; for a warning at start.
std::vector<std::string> foreign_secrets(const EnvLookup& env, const std::string& component);

// Pure helpers, exposed for tests and tools.
bool valid_instance(const std::string& instance);
// BTC_USDT_conservative -> {BTC-USDT, conservative}; BTC_USDT -> {BTC-USDT, default}.
std::pair<std::string, std::string> symbol_and_profile(const std::string& instance);
// BTC-USDT -> BTC_USDT (the agents' heartbeat file naming).
std::string symbol_safe(const std::string& symbol);
std::string unit_for(const std::string& instance);
std::string_view to_string(SystemdScope s);

// Exit codes (sysexits.h): units set RestartPreventExitStatus=78 so a bad config does not loop.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 64;
inline constexpr int kExitConfig = 78;

}  // namespace trading_heal::common
