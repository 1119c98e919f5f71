// The settings table: one row per setting. A row names the variable, who reads it, how it is
// read (parsed, bounded, checked: a bad value is a ConfigError naming it) and how its value is
// shown, and one line of help. Rows are read in order: a default derived from another setting
// (the global window from the interval, the endpoints from the runtime directory) comes after it.
#include "trading_heal/common/settings.hpp"

#include <cstdio>
#include <map>
#include <sstream>

#include "reader.hpp"
#include "trading_heal/common/curve.hpp"

namespace trading_heal::common {
namespace {

using detail::Reader;

struct Row {
  const char* name;
  unsigned readers;
  void (*read)(Reader& r, Config& c, const Row& row);  // nullptr: read by load_config itself
  std::string (*show)(const Config& c);                // the value, for the default column
  double min;
  double max;
  const char* help;
  const char* note = nullptr;  // a derived default, said in words
};

std::string secs(milliseconds v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", static_cast<double>(v.count()) / 1000.0);
  return buf;
}
std::string flag(bool v) { return v ? "true" : "false"; }

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, ',')) {
    auto b = cur.find_first_not_of(" \t");
    auto e = cur.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(cur.substr(b, e - b + 1));
  }
  return out;
}

void read_peers(Reader& r, Config& c, const Row& row) {
  auto v = r.raw(row.name);
  if (!v) return;
  for (const auto& kv : split_list(*v)) {
    const auto eq = kv.find('=');
    const std::string role = kv.substr(0, eq);
    const std::string user = eq == std::string::npos ? std::string() : kv.substr(eq + 1);
    if (role != "probe" && role != "diagnoser" && role != "actuator" && role != "exporter") {
      r.error(row.name, kv, "names probe, diagnoser, actuator or exporter: COMPONENT=USER");
      return;
    }
    if (user.empty() || user.find_first_of(" \t:/") != std::string::npos) {
      r.error(row.name, kv, "wants COMPONENT=USER with a user name");
      return;
    }
    c.peers[role] = user;
  }
}

void read_log_level(Reader& r, Config& c, const Row& row) {
  auto v = r.raw(row.name);
  if (!v) return;
  static const std::vector<std::string> levels{"trace", "debug", "info",     "warning",
                                               "warn",  "error", "critical", "off"};
  if (std::find(levels.begin(), levels.end(), *v) == levels.end()) {
    r.error(row.name, *v, "must be trace, debug, info, warning, error, critical or off");
  } else {
    c.log_level = *v;
  }
}

void read_api_hosts(Reader& r, Config& c, const Row& row) {
  auto v = r.raw(row.name);
  if (!v) return;
  for (auto h : split_list(*v)) {
    if (h.size() > 253 ||
        h.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
            std::string::npos) {
      r.error(row.name, h, "must be host names (letters, digits, '.', '-'), comma separated");
      return;
    }
    std::transform(h.begin(), h.end(), h.begin(), ::tolower);
    c.api_hosts.push_back(h);
  }
}

// Removed: sudo cannot run in the hardened actuator (NoNewPrivileges=, implied by its sandbox),
// and the polkit rule grants the same narrow permission over D-Bus. Refused, not ignored, so
// that an old env file does not quietly change what the actuator may do.
void read_restart_sudo(Reader& r, Config&, const Row& row) {
  if (bool sudo = false; (r.boolean(row.name, sudo), sudo)) {
    r.error(row.name, "true",
            "is no longer supported: restarts go over D-Bus, allowed by the polkit rule that "
            "deploy.sh installs; remove the setting");
  }
}

// A hook is a program the privileged actuator runs: named by its absolute path, never looked up
// in PATH (whoever controls a PATH directory would choose it).
void read_hook(Reader& r, std::string& hook, const Row& row) {
  r.str(row.name, hook);
  const auto start = hook.find_first_not_of(" \t");
  if (start != std::string::npos && hook[start] != '/') {
    r.error(row.name, hook,
            "must start with the program's absolute path (e.g. /usr/local/bin/notify)");
  }
}

void read_ollama_host(Reader& r, Config& c, const Row& row) {
  auto v = r.raw(row.name);
  if (!v) return;
  if (v->rfind("http://", 0) != 0 && v->rfind("https://", 0) != 0) {
    r.error(row.name, *v, "must start with http:// or https://");
    return;
  }
  c.ollama.host = *v;
  while (!c.ollama.host.empty() && c.ollama.host.back() == '/') c.ollama.host.pop_back();
}

void read_endpoint(Reader& r, std::string& ep, const char* fallback, const Config& c,
                   const Row& row);
// The host's name in every record and metric (the `host` label). A host bound to a CURVE key
// (hosts.d/NAME.pub) is named by its file instead: a record never names its own host.
void read_host(Reader& r, Config& c, const Row& row) {
  c.host = kernel_host_name();
  r.str(row.name, c.host);
  if (!valid_host_name(c.host)) {
    r.error(row.name, c.host,
            "must be 1-63 letters, digits, '.', '-' or '_', not starting with '.' or '-'");
  }
}
// Empty: one host (no default). Otherwise checked as every endpoint is.
template <std::string Endpoints::*field>
void read_optional_endpoint(Reader& r, Config& c, const Row& row) {
  auto v = r.raw(row.name);
  if (!v || v->empty()) return;
  read_endpoint(r, c.endpoints.*field, "", c, row);
}
void read_state_endpoint(Reader& r, Config& c, const Row& row) {
  read_optional_endpoint<&Endpoints::state>(r, c, row);
}
void read_pg_port(Reader& r, Config& c, const Row& row) {
  r.str(row.name, c.pg.port);
  char* end = nullptr;
  const long port = std::strtol(c.pg.port.c_str(), &end, 10);
  if (*end != '\0' || port <= 0 || port > 65535) {
    r.error(row.name, c.pg.port, "must be a port number 1-65535");
  }
}

void read_database_url(Reader& r, Config& c, const Row& row) {
  r.str(row.name, c.pg.database_url);
  if (!c.pg.database_url.empty() && c.pg.database_url.rfind("postgresql://", 0) != 0 &&
      c.pg.database_url.rfind("postgres://", 0) != 0) {
    PostgresConfig shown;  // the error shows the URL without its password
    shown.database_url = c.pg.database_url;
    r.error(row.name, shown.describe(), "must be a libpq URI (postgresql://...)");
  }
}

// Each component binds in a directory of its own (only it can create or replace its sockets);
// who may speak on them is the peer guard's decision (PROTOCOL.md "Who may speak").
void read_endpoint(Reader& r, std::string& ep, const char* fallback, const Config& c,
                   const Row& row) {
  ep = "ipc://" + c.runtime_dir + fallback;
  r.str(row.name, ep);
  if (ep.rfind("ipc://", 0) != 0 && ep.rfind("tcp://", 0) != 0 && ep.rfind("inproc://", 0) != 0) {
    r.error(row.name, ep, "must be an ipc://, tcp:// or inproc:// endpoint");
  }
  if (ep.rfind("ipc://@", 0) == 0) {
    r.error(row.name, ep, "abstract ipc sockets have no permission check; use a path");
  }
  // Nothing on tcp without CURVE: a tcp peer has no kernel credentials to check.
  if (ep.rfind("tcp://", 0) == 0 && c.curve_secret_key_file.empty()) {
    r.error(row.name, ep,
            "tcp:// needs CURVE keys: set TRADING_HEAL_CURVE_SECRET_KEY_FILE (and "
            "TRADING_HEAL_CURVE_SERVER_KEY_FILE where it connects; trading-heal-ctl keygen)");
  }
}

// Rows of the common kinds: a field of Config (or of one of its parts).
#define TH_TEXT(f)                                                \
  [](Reader& r, Config& c, const Row& w) { r.str(w.name, c.f); }, \
      [](const Config& c) { return std::string(c.f); }
#define TH_SECONDS(f)                                                               \
  [](Reader& r, Config& c, const Row& w) { r.seconds(w.name, c.f, w.min, w.max); }, \
      [](const Config& c) { return secs(c.f); }
#define TH_INT(f)                                                             \
  [](Reader& r, Config& c, const Row& w) {                                    \
    r.integer(w.name, c.f, static_cast<int>(w.min), static_cast<int>(w.max)); \
  },                                                                          \
      [](const Config& c) { return std::to_string(c.f); }
#define TH_FLAG(f)                                                    \
  [](Reader& r, Config& c, const Row& w) { r.boolean(w.name, c.f); }, \
      [](const Config& c) { return flag(c.f); }
#define TH_LISTEN(f)                                                 \
  [](Reader& r, Config& c, const Row& w) { r.listen(w.name, c.f); }, \
      [](const Config& c) { return std::string(c.f); }
#define TH_ENDPOINT(f, path)                                                               \
  [](Reader& r, Config& c, const Row& w) { read_endpoint(r, c.endpoints.f, path, c, w); }, \
      [](const Config& c) { return c.endpoints.f; }

constexpr unsigned kAll = kDaemons;
constexpr double kDay = 86400;

// clang-format off
const Row kRows[] = {
  {"TRADING_HEAL_AGENTS", kAll | kCtl, nullptr,
   [](const Config& c) {
     std::string list;
     for (const auto& a : c.agents) list += (list.empty() ? "" : ",") + a.instance;
     return list;
   }, 0, 0,
   "the agents, instance names of crypto-agent@INSTANCE.service, comma separated"},
  {"TRADING_HEAL_AGENTS_FILE", kAll | kCtl, nullptr, [](const Config&) { return std::string(); }, 0, 0,
   "a JSON list of {instance, symbol, profile, unit, process_pattern, heartbeat_path, enabled}; wins over TRADING_HEAL_AGENTS"},
  {"TRADING_HEAL_HOST", kAll | kCtl, read_host, [](const Config& c) { return c.host; }, 0, 0,
   "this host's name in records and metrics (the host label); hosts reporting over CURVE are named by their key's file instead",
   "the kernel's host name"},
  {"TRADING_HEAL_RUNTIME_DIR", kAll | kCtl, TH_TEXT(runtime_dir), 0, 0, "where the ipc:// endpoints live"},
  {"TRADING_HEAL_DATA_DIR", kAll, TH_TEXT(data_dir), 0, 0, "state, outboxes and the audit log"},
  {"TRADING_HEAL_HEARTBEAT_DIR", kProbe | kAll, TH_TEXT(heartbeat_dir), 0, 0,
   "the agents' heartbeat files (crypto_agent_SYMBOL_heartbeat), the age when the database is away"},
  {"TRADING_HEAL_PROC_ROOT", kProbe, TH_TEXT(proc_root), 0, 0, "where the probe reads processes (tests point it at fixtures)"},
  {"TRADING_HEAL_SYSTEMD_SCOPE", kProbe | kDiagnoser | kActuator,
   [](Reader& r, Config& c, const Row& w) {
     r.choice(w.name, c.scope, {{"system", SystemdScope::kSystem}, {"user", SystemdScope::kUser}});
   },
   [](const Config& c) { return std::string(to_string(c.scope)); }, 0, 0, "which systemd manager: system or user"},
  {"TRADING_HEAL_INTERVAL", kAll, TH_SECONDS(interval), 0.05, 3600,
   "seconds between two cycles of checks (0.05-3600); components are silent after 3"},
  // auto: each agent's own, learned by the probe from its history (docs/operations.md); the
  // fixed one that stands until then is set by load_config, once MIN and MAX are read.
  {"TRADING_HEAL_STALL_THRESHOLD", kProbe | kActuator,
   [](Reader& r, Config& c, const Row& w) {
     if (r.raw(w.name) == "auto") {
       c.stall_threshold_auto = true;
       return;
     }
     r.seconds(w.name, c.stall_threshold, w.min, w.max, " (or auto)");
   },
   [](const Config& c) { return c.stall_threshold_auto ? std::string("auto") : secs(c.stall_threshold); },
   0.1, kDay,
   "seconds without a new decision before an agent is STALLED, or auto: each agent's own, learned "
   "from its decisions of the last 7 days (max(MIN, 3 x its p99.9 gap), at most MAX; 600 s clamped "
   "to MIN-MAX until it has 1000 gaps over 24 h)"},
  {"TRADING_HEAL_STALL_THRESHOLD_MIN", kProbe | kActuator, TH_SECONDS(stall_threshold_min), 0.1, kDay,
   "with STALL_THRESHOLD=auto: the shortest threshold an agent may learn, seconds"},
  {"TRADING_HEAL_STALL_THRESHOLD_MAX", kProbe | kActuator, TH_SECONDS(stall_threshold_max), 0.1, kDay,
   "with STALL_THRESHOLD=auto: the longest threshold an agent may learn, seconds (>= MIN)"},
  {"TRADING_HEAL_CONSECUTIVE_THRESHOLD", kProbe | kActuator, TH_INT(consecutive_threshold), 1, 1000,
   "failed checks in a row before a restart (1-1000)"},
  {"TRADING_HEAL_DIAGNOSE_AFTER", kDiagnoser, TH_INT(diagnose_after), 1, 1000,
   "failed checks in a row before the diagnosis is asked (1-1000)"},
  {"TRADING_HEAL_CONFIRM_INTERVAL", kProbe, TH_SECONDS(confirm_interval), 0.05, 3600,
   "seconds between the confirming checks after a failed one (a DOWN: at most 0.5)"},
  {"TRADING_HEAL_EXHAUSTED_AFTER", kActuator, TH_INT(exhausted_after), 1, 100000,
   "failed checks in an incident before the agent is left to the operator (>= CONSECUTIVE_THRESHOLD)"},
  {"TRADING_HEAL_MAX_RESTARTS", kActuator, TH_INT(max_restarts), 0, 1000,
   "restarts of one agent per hour (0-1000)"},
  {"TRADING_HEAL_FLEET_MAX_RESTARTS", kActuator | kExporter, TH_INT(fleet_max_restarts), 0, 100000,
   "restarts of the whole fleet per hour (a centre: of all its hosts together)"},
  {"TRADING_HEAL_COOLDOWN", kActuator, TH_SECONDS(cooldown), 0, kDay, "seconds between two restarts of one agent"},
  {"TRADING_HEAL_BACKOFF_MAX", kActuator, TH_SECONDS(backoff_max), 0, kDay,
   "the longest extra wait after restarts that did not help, seconds"},
  {"TRADING_HEAL_STABLE_AFTER", kActuator, TH_SECONDS(stable_after), 0, kDay,
   "seconds healthy before the backoff is forgotten"},
  {"TRADING_HEAL_RECOVERY_GRACE", kActuator, TH_SECONDS(recovery_grace), 0, kDay,
   "seconds a restarted agent has to report HEALTHY; 0: derived",
   "0: 2 x interval + max(stall threshold (auto: its MAX), startup grace), at most 15 min"},
  {"TRADING_HEAL_STARTUP_GRACE", kProbe | kActuator, TH_SECONDS(startup_grace), 0, kDay,
   "seconds a (re)started agent may take before its first decision"},
  {"TRADING_HEAL_RESTART_TIMEOUT", kActuator, TH_SECONDS(restart_timeout), 0.1, 3600,
   "seconds for the restart job, and again for the new MainPID's verification"},
  {"TRADING_HEAL_GLOBAL_MIN_AGENTS", kActuator | kExporter, TH_INT(global_min_agents), 2, 100000,
   "agents failing together that make a global incident (2-100000; a centre: on two hosts or more)"},
  {"TRADING_HEAL_GLOBAL_WINDOW", kActuator | kExporter,
   [](Reader& r, Config& c, const Row& w) {
     c.global_window = c.interval * 2;
     r.seconds(w.name, c.global_window, w.min, w.max);
   },
   [](const Config& c) { return secs(c.global_window); }, 0.05, kDay,
   "seconds within which failures count as one global incident", "2 x TRADING_HEAL_INTERVAL"},
  {"TRADING_HEAL_DIAGNOSE_WORKERS", kDiagnoser, TH_INT(diagnose_workers), 1, 64, "diagnoses at once (1-64)"},
  {"TRADING_HEAL_DIAGNOSIS_CACHE_TTL", kDiagnoser, TH_SECONDS(diagnosis_cache_ttl), 0, kDay,
   "seconds a diagnosis is reused for the same agent and log"},
  {"TRADING_HEAL_RULES_FILE", kDiagnoser, TH_TEXT(rules_file), 0, 0,
   "the shipped rule table", "../share/trading-heal/rules/trading-heal.rules next to the binary"},
  {"TRADING_HEAL_PEERS", kAll, read_peers,
   [](const Config&) { return std::string(); }, 0, 0,
   "who runs each component, probe=USER,diagnoser=USER,...: who may speak on each socket (PROTOCOL.md); "
   "the system units name trading-heal-probe etc.", "every component: this process's user"},
  {"TRADING_HEAL_OPERATORS_GROUP", kAll, TH_TEXT(operators_group), 0, 0,
   "the group whose members may use ctl and the tap (the system units: trading-heal-operators)"},
  {"TRADING_HEAL_CURVE_SECRET_KEY_FILE", kAll, TH_TEXT(curve_secret_key_file), 0, 0,
   "this component's CURVE secret key (0600; trading-heal-ctl keygen), needed by tcp:// endpoints"},
  {"TRADING_HEAL_CURVE_SERVER_KEY_FILE", kAll, TH_TEXT(curve_server_key_file), 0, 0,
   "the CURVE public key of the side this component connects to over tcp://"},
  {"TRADING_HEAL_HOSTS_DIR", kAll, TH_TEXT(hosts_dir), 0, 0,
   "the public keys allowed to connect over tcp:// (HOST.pub; re-read on SIGHUP)"},
  {"TRADING_HEAL_RULES_DIR", kDiagnoser, TH_TEXT(rules_dir), 0, 0, "the operator's own *.rules, tried before the shipped table"},
  {"TRADING_HEAL_DRY_RUN", kActuator, TH_FLAG(dry_run), 0, 0, "decide and record would_restart, restart nothing"},
  // Shadow: beside another healer for a while, then trading-heal-replay --compare-audit.
  {"TRADING_HEAL_MODE", kActuator,
   [](Reader& r, Config& c, const Row& w) {
     bool shadow = false;
     r.choice(w.name, shadow, {{"enforce", false}, {"shadow", true}});
     if (shadow) c.dry_run = true;
     c.shadow = shadow;
   },
   [](const Config& c) { return std::string(c.shadow ? "shadow" : "enforce"); }, 0, 0,
   "enforce, or shadow: run live but only record would_restart (as TRADING_HEAL_DRY_RUN=true), "
   "to compare with another healer (trading-heal-replay --compare-audit)"},
  {"TRADING_HEAL_LOG_LEVEL", kAll, read_log_level, [](const Config& c) { return c.log_level; }, 0, 0,
   "trace, debug, info, warning, error, critical or off"},
  {"TRADING_HEAL_METRICS_LISTEN", kExporter, TH_LISTEN(metrics_listen), 0, 0, "HOST:PORT of /metrics"},
  {"TRADING_HEAL_API_LISTEN", kExporter | kCtl, TH_LISTEN(api_listen), 0, 0,
   "HOST:PORT of /health /status /audit"},
  {"TRADING_HEAL_API_TOKEN_FILE", kExporter | kCtl, TH_TEXT(api_token_file), 0, 0,
   "the bearer token of /status and /audit (deploy.sh makes one; the credential api-token wins)"},
  {"TRADING_HEAL_API_ALLOW_ANONYMOUS", kExporter, TH_FLAG(api_allow_anonymous), 0, 0,
   "an API beyond loopback without a token starts (otherwise it does not)"},
  {"TRADING_HEAL_API_HOSTS", kExporter, read_api_hosts, [](const Config&) { return std::string(); }, 0, 0,
   "Host header names the API answers besides IPs and localhost (others: 421)"},
  {"TRADING_HEAL_AUDIT_MAX_BYTES", kExporter,
   [](Reader& r, Config& c, const Row& w) { r.bytes(w.name, c.audit_max_bytes, 4096); },
   [](const Config& c) { return std::to_string(c.audit_max_bytes); }, 4096, 0,
   "the audit file's size before it is rotated (>= 4096)"},
  {"TRADING_HEAL_AUDIT_KEEP", kExporter, TH_INT(audit_keep), 1, 1000, "rotated audit files kept (1-1000)"},
  {"TRADING_HEAL_RESTART_BACKEND", kActuator,
   [](Reader& r, Config& c, const Row& w) {
     r.choice(w.name, c.restart_backend,
              {{"dbus", RestartBackend::kDbus}, {"systemctl", RestartBackend::kSystemctl}});
   },
   [](const Config& c) {
     return std::string(c.restart_backend == RestartBackend::kDbus ? "dbus" : "systemctl");
   }, 0, 0, "dbus, or systemctl (a user manager only)"},
  // Read by no one (readers 0): not documented, only refused.
  {"TRADING_HEAL_RESTART_SUDO", 0, read_restart_sudo, [](const Config&) { return std::string("false"); },
   0, 0, "removed: refused when true (restarts go over D-Bus, allowed by polkit)"},
  {"TRADING_HEAL_PRE_RESTART_HOOK", kActuator,
   [](Reader& r, Config& c, const Row& w) { read_hook(r, c.pre_restart_hook, w); },
   [](const Config& c) { return c.pre_restart_hook; }, 0, 0,
   "a program run before each restart: an absolute path; it gets PATH, LANG, TZ, HOME and its own TRADING_HEAL_HOOK* variables, nothing else"},
  {"TRADING_HEAL_POST_RESTART_HOOK", kActuator,
   [](Reader& r, Config& c, const Row& w) { read_hook(r, c.post_restart_hook, w); },
   [](const Config& c) { return c.post_restart_hook; }, 0, 0,
   "a program run after each restart, as the pre-restart hook"},
  {"TRADING_HEAL_HOOK_TIMEOUT", kActuator, TH_SECONDS(hook_timeout), 0.1, kDay, "seconds a hook may run"},
  {"OLLAMA_ENABLED", kDiagnoser, TH_FLAG(ollama.enabled), 0, 0, "ask the model (false: the rules only)"},
  {"OLLAMA_HOST", kDiagnoser, read_ollama_host, [](const Config& c) { return c.ollama.host; }, 0, 0,
   "the model server's http:// or https:// address (the diagnoser's file)"},
  {"OLLAMA_MODEL", kDiagnoser, TH_TEXT(ollama.model), 0, 0, "the model (the diagnoser's file)"},
  {"OLLAMA_TIMEOUT", kDiagnoser | kActuator | kCtl, TH_SECONDS(ollama.timeout), 0.1, 3600,
   "seconds the diagnoser waits for the model"},
  {"OLLAMA_API", kDiagnoser,
   [](Reader& r, Config& c, const Row& w) {
     r.choice(w.name, c.ollama.api, {{"ollama", LlmApi::kOllama}, {"openai", LlmApi::kOpenAi}});
   },
   [](const Config& c) { return std::string(c.ollama.api == LlmApi::kOllama ? "ollama" : "openai"); }, 0, 0,
   "ollama, or openai (an OpenAI-compatible server; the diagnoser's file)"},
  {"OLLAMA_KEEP_ALIVE", kDiagnoser, TH_TEXT(ollama.keep_alive), 0, 0, "how long the model stays loaded (the diagnoser's file)"},
  // The diagnosis is asked at the first failed check; the restart waits for it at most this long
  // from then: a model's typical 5-15 s and the journal read, never longer than the diagnoser
  // itself waits for the model (it then answers from its rules).
  {"TRADING_HEAL_DIAGNOSIS_WAIT", kActuator,
   [](Reader& r, Config& c, const Row& w) {
     c.diagnosis_wait = std::min(c.ollama.timeout, milliseconds(15000)) + milliseconds(2000);
     r.seconds(w.name, c.diagnosis_wait, w.min, w.max);
   },
   [](const Config& c) { return secs(c.diagnosis_wait); }, 0, kDay,
   "seconds the restart waits for the diagnosis after the first failed check",
   "min(OLLAMA_TIMEOUT, 15) + 2"},
  {"POSTGRES_HOST", kProbe, TH_TEXT(pg.host), 0, 0, "the database's host (the probe's file)"},
  {"POSTGRES_PORT", kProbe, read_pg_port, [](const Config& c) { return c.pg.port; }, 0, 0, "the database's port (the probe's file)"},
  {"POSTGRES_USER", kProbe, TH_TEXT(pg.user), 0, 0, "the database user, read-only on btc.decisions (the probe's file)"},
  {"POSTGRES_PASSWORD", kProbe, TH_TEXT(pg.password), 0, 0, "its password (no default; the probe's file only)"},
  {"POSTGRES_DB", kProbe, TH_TEXT(pg.db), 0, 0, "the database (the probe's file)"},
  {"DATABASE_URL", kProbe, read_database_url, [](const Config& c) { return c.pg.database_url; }, 0, 0,
   "a libpq URI; wins over POSTGRES_* (the probe's file)"},
  {"TRADING_HEAL_HEALTH_ENDPOINT", kAll | kCtl, TH_ENDPOINT(health, "/probe/health.sock"), 0, 0,
   "the probe's health reports (PUB); every endpoint: see PROTOCOL.md"},
  {"TRADING_HEAL_DIAGNOSER_PUB_ENDPOINT", kProbe | kDiagnoser | kExporter | kCtl,
   TH_ENDPOINT(diagnoser_pub, "/diagnoser/pub.sock"), 0, 0, "the diagnoser's state (PUB)"},
  {"TRADING_HEAL_ACTUATOR_PUB_ENDPOINT", kProbe | kActuator | kExporter | kCtl,
   TH_ENDPOINT(actuator_pub, "/actuator/pub.sock"), 0, 0, "the actuator's state (PUB)"},
  {"TRADING_HEAL_DIAGNOSIS_ENDPOINT", kDiagnoser | kActuator,
   TH_ENDPOINT(diagnosis, "/actuator/diagnosis.sock"), 0, 0, "diagnoses to the actuator (reliable)"},
  {"TRADING_HEAL_EVENTS_ENDPOINT", kAll, TH_ENDPOINT(events, "/exporter/events.sock"), 0, 0,
   "audit records to the exporter (reliable)"},
  {"TRADING_HEAL_STATE_ENDPOINT", kProbe | kExporter, read_state_endpoint,
   [](const Config& c) { return c.endpoints.state; }, 0, 0,
   "many hosts: the centre's state collector; the centre's exporter binds it, each host's probe sends the host's state there (unset: one host)"},
  {"TRADING_HEAL_RELAY_ENDPOINT", kProbe | kActuator | kDiagnoser, read_optional_endpoint<&Endpoints::relay>,
   [](const Config& c) { return c.endpoints.relay; }, 0, 0,
   "many hosts: the probe binds it and forwards the records the host's actuator and diagnoser send there to the centre's events endpoint (unset: one host)"},
  {"TRADING_HEAL_FLEET_ENDPOINT", kProbe | kExporter, read_optional_endpoint<&Endpoints::fleet>,
   [](const Config& c) { return c.endpoints.fleet; }, 0, 0,
   "many hosts: the centre's orders (hold restarts fleet-wide, the canary host); the centre's exporter binds it, each host's probe connects and tells its actuator (unset: each host decides alone)"},
  {"TRADING_HEAL_ANALYSIS_ENDPOINT", kProbe | kExporter, read_optional_endpoint<&Endpoints::analysis>,
   [](const Config& c) { return c.endpoints.analysis; }, 0, 0,
   "many hosts: the centre's model; the centre's exporter binds it and passes the hosts' (redacted) model requests to the centre's diagnoser, each host's probe connects (unset: each host's diagnoser asks OLLAMA_HOST)"},
  {"TRADING_HEAL_MODEL_ENDPOINT", kDiagnoser | kExporter, read_optional_endpoint<&Endpoints::model>,
   [](const Config& c) { return c.endpoints.model; }, 0, 0,
   "many hosts, the centre: its diagnoser binds it and asks OLLAMA_HOST for the hosts, whose requests the exporter passes from the analysis endpoint (unset: no one else's)"},
  {"TRADING_HEAL_MODEL_RELAY_ENDPOINT", kProbe | kDiagnoser, read_optional_endpoint<&Endpoints::model_relay>,
   [](const Config& c) { return c.endpoints.model_relay; }, 0, 0,
   "many hosts, a host: the probe binds it and passes the diagnoser's model requests to the centre's analysis endpoint; the diagnoser asks there instead of OLLAMA_HOST (unset: one host)"},
  {"TRADING_HEAL_CONTROL_ENDPOINT", kActuator | kCtl, TH_ENDPOINT(actuator_control, "/actuator/control.sock"),
   0, 0, "the actuator's commands (pause, resume, status)"},
  {"TRADING_HEAL_DIAGNOSER_CONTROL_ENDPOINT", kDiagnoser | kActuator | kCtl,
   TH_ENDPOINT(diagnoser_control, "/diagnoser/control.sock"), 0, 0, "the diagnoser's commands (diagnose now)"},
};
// clang-format on

#undef TH_TEXT
#undef TH_SECONDS
#undef TH_INT
#undef TH_FLAG
#undef TH_LISTEN
#undef TH_ENDPOINT

}  // namespace

namespace detail {
void read_settings(Reader& r, Config& c) {
  for (const Row& row : kRows) {
    if (row.read != nullptr) row.read(r, c, row);
  }
}
}  // namespace detail

std::vector<SettingDoc> setting_docs() {
  // The defaults as a configuration with nothing set has them.
  const auto defaults =
      load_config([](const std::string&) { return std::optional<std::string>(); });
  std::vector<SettingDoc> docs;
  for (const Row& row : kRows) {
    if (row.readers == 0) continue;
    SettingDoc d{row.name, row.note != nullptr ? row.note : (defaults ? row.show(*defaults) : ""),
                 row.help, row.readers, row.note != nullptr};
    docs.push_back(std::move(d));
  }
  return docs;
}

std::string settings_markdown() {
  std::string out = "| Setting | Default | Read by | Meaning |\n|---|---|---|---|\n";
  for (const auto& d : setting_docs()) {
    const std::string shown = d.default_text.empty() ? "(unset)"
                              : d.derived            ? d.default_text
                                                     : "`" + d.default_text + "`";
    out +=
        "| `" + d.name + "` | " + shown + " | " + readers_text(d.readers) + " | " + d.help + " |\n";
  }
  return out;
}

std::string readers_text(unsigned readers) {
  std::string out;
  for (const auto& [bit, name] : {std::pair{kProbe, "probe"},
                                  {kDiagnoser, "diagnoser"},
                                  {kActuator, "actuator"},
                                  {kExporter, "exporter"},
                                  {kCtl, "ctl"}}) {
    if ((readers & bit) != 0) out += (out.empty() ? "" : ", ") + std::string(name);
  }
  return out;
}

std::string settings_help(unsigned readers) {
  std::string out =
      "\nEnvironment (default in brackets; a bad value stops the start, naming it):\n";
  for (const auto& d : setting_docs()) {
    if ((d.readers & readers) == 0) continue;
    out += "  " + d.name + (d.default_text.empty() ? "" : " [" + d.default_text + "]") + "\n";
    out += "      " + d.help + "\n";
  }
  return out;
}

}  // namespace trading_heal::common
