// Loading and validating the configuration from the environment and the agents file.
#include "trading_heal/common/config.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>

namespace trading_heal::common {
namespace {

constexpr const char* kDefaultAgents = "BTC_USDT,ETH_USDT,XRP_USDT,SOL_USDT,DOGE_USDT,ADA_USDT";

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) {
    auto b = cur.find_first_not_of(" \t");
    auto e = cur.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(cur.substr(b, e - b + 1));
  }
  return out;
}

// Reads variables into the config, remembering the first error. Each reader leaves the default
// in place when the variable is unset or empty.
class Reader {
 public:
  explicit Reader(const EnvLookup& env) : env_(env) {}

  std::optional<std::string> raw(const std::string& name) const {
    auto v = env_(name);
    if (v && v->empty()) return std::nullopt;
    return v;
  }

  void str(const std::string& name, std::string& out) {
    if (auto v = raw(name)) out = *v;
  }

  void boolean(const std::string& name, bool& out) {
    auto v = raw(name);
    if (!v) return;
    std::string s = *v;
    std::transform(s.begin(), s.end(), s.begin(), ::tolower);
    if (s == "true" || s == "1" || s == "yes" || s == "on") {
      out = true;
    } else if (s == "false" || s == "0" || s == "no" || s == "off") {
      out = false;
    } else {
      error(name, *v, "must be true or false");
    }
  }

  void integer(const std::string& name, int& out, int min, int max) {
    auto v = raw(name);
    if (!v) return;
    char* end = nullptr;
    errno = 0;
    long n = std::strtol(v->c_str(), &end, 10);
    if (errno != 0 || end == v->c_str() || *end != '\0' || n < min || n > max) {
      error(name, *v, "must be an integer from " + std::to_string(min) + " to " +
                          std::to_string(max));
      return;
    }
    out = static_cast<int>(n);
  }

  void bytes(const std::string& name, std::uint64_t& out, std::uint64_t min) {
    auto v = raw(name);
    if (!v) return;
    char* end = nullptr;
    errno = 0;
    unsigned long long n = std::strtoull(v->c_str(), &end, 10);
    if (errno != 0 || end == v->c_str() || *end != '\0' || n < min || (*v)[0] == '-') {
      error(name, *v, "must be a number of bytes >= " + std::to_string(min));
      return;
    }
    out = n;
  }

  // Seconds, fractions allowed ("0.5"). `min_s` is the smallest accepted value.
  void seconds(const std::string& name, milliseconds& out, double min_s, double max_s = 86400) {
    auto v = raw(name);
    if (!v) return;
    char* end = nullptr;
    errno = 0;
    double s = std::strtod(v->c_str(), &end);
    if (errno != 0 || end == v->c_str() || *end != '\0' || !std::isfinite(s) || s < min_s ||
        s > max_s || (min_s == 0 && s < 0)) {
      std::ostringstream msg;
      msg << "must be a number of seconds " << (min_s > 0 ? "> 0" : ">= 0") << " and <= "
          << max_s;
      error(name, *v, msg.str());
      return;
    }
    if (min_s > 0 && s <= 0) {
      error(name, *v, "must be a number of seconds > 0");
      return;
    }
    out = milliseconds(static_cast<std::int64_t>(std::llround(s * 1000)));
  }

  // One of a fixed set of words, e.g. system|user; the error lists them ("system or user").
  template <class E>
  void choice(const std::string& name, E& out,
              std::initializer_list<std::pair<const char*, E>> options) {
    auto v = raw(name);
    if (!v) return;
    std::string words;
    for (const auto& [word, value] : options) {
      if (*v == word) {
        out = value;
        return;
      }
      words += (words.empty() ? "" : " or ") + std::string(word);
    }
    error(name, *v, "must be " + words);
  }

  void listen(const std::string& name, std::string& out) {
    auto v = raw(name);
    if (!v) return;
    auto colon = v->rfind(':');
    if (colon == std::string::npos || colon == 0) {
      error(name, *v, "must be HOST:PORT");
      return;
    }
    char* end = nullptr;
    long port = std::strtol(v->c_str() + colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535 || colon + 1 == v->size()) {
      error(name, *v, "port must be 0-65535");
      return;
    }
    out = *v;
  }

  void error(const std::string& name, const std::string& value, const std::string& msg) {
    if (!err_) err_ = ConfigError{name, value, msg};
  }
  const std::optional<ConfigError>& err() const { return err_; }

 private:
  const EnvLookup& env_;
  std::optional<ConfigError> err_;
};

AgentSpec default_agent(const std::string& instance, const std::string& heartbeat_dir) {
  AgentSpec a;
  a.instance = instance;
  a.unit = unit_for(instance);
  std::tie(a.symbol, a.profile) = symbol_and_profile(instance);
  a.heartbeat_path = heartbeat_dir + "/crypto_agent_" + symbol_safe(a.symbol) + "_heartbeat";
  return a;
}

std::optional<ConfigError> load_agents_file(const std::string& path, Config& cfg) {
  const std::string var = "TRADING_HEAL_AGENTS_FILE";
  std::ifstream in(path);
  if (!in) return ConfigError{var, path, "cannot be read"};
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    return ConfigError{var, path, std::string("is not valid JSON: ") + e.what()};
  }
  const nlohmann::json* list = &doc;
  if (doc.is_object() && doc.contains("agents")) list = &doc["agents"];
  if (!list->is_array()) return ConfigError{var, path, "must be a JSON array of agents"};
  cfg.agents.clear();
  std::size_t i = 0;
  for (const auto& item : *list) {
    const std::string where = path + " agent #" + std::to_string(i++);
    if (!item.is_object() || !item.contains("instance") || !item["instance"].is_string()) {
      return ConfigError{var, where, "needs a string \"instance\""};
    }
    const std::string instance = item["instance"];
    if (!valid_instance(instance)) {
      return ConfigError{var, instance,
                         where + ": instance must match ^[A-Za-z0-9]+(_[A-Za-z0-9]+)*$"};
    }
    AgentSpec a = default_agent(instance, cfg.heartbeat_dir);
    auto opt_str = [&](const char* key, std::string& out) -> std::optional<ConfigError> {
      if (!item.contains(key)) return std::nullopt;
      if (!item[key].is_string()) return ConfigError{var, where, std::string(key) + " must be a string"};
      out = item[key].get<std::string>();
      return std::nullopt;
    };
    std::string unit = a.unit;
    for (auto [key, out] : {std::pair<const char*, std::string*>{"symbol", &a.symbol},
                            {"profile", &a.profile},
                            {"unit", &unit},
                            {"process_pattern", &a.process_pattern},
                            {"heartbeat_path", &a.heartbeat_path}}) {
      if (auto e = opt_str(key, *out)) return e;
    }
    if (unit != a.unit) {
      return ConfigError{var, unit, where + ": unit must be " + a.unit +
                                        " (trading-heal restarts crypto-agent@ units only)"};
    }
    if (item.contains("enabled")) {
      if (!item["enabled"].is_boolean()) return ConfigError{var, where, "enabled must be a boolean"};
      a.enabled = item["enabled"];
    }
    if (!a.process_pattern.empty()) {
      try {
        std::regex check(a.process_pattern, std::regex::extended);
      } catch (const std::regex_error&) {
        return ConfigError{var, a.process_pattern, where + ": process_pattern is not a valid regex"};
      }
    }
    if (cfg.find_agent(instance) != nullptr) {
      return ConfigError{var, instance, where + ": instance listed twice"};
    }
    cfg.agents.push_back(std::move(a));
  }
  if (cfg.agents.empty()) return ConfigError{var, path, "lists no agents"};
  return std::nullopt;
}

}  // namespace

bool valid_instance(const std::string& instance) {
  static const std::regex re("^[A-Za-z0-9]+(_[A-Za-z0-9]+)*$");
  return instance.size() <= 128 && std::regex_match(instance, re);
}

std::pair<std::string, std::string> symbol_and_profile(const std::string& instance) {
  auto parts = split(instance, '_');
  if (parts.size() < 2) return {instance, "default"};
  std::string symbol = parts[0] + "-" + parts[1];
  std::string profile;
  for (std::size_t i = 2; i < parts.size(); ++i) profile += (i > 2 ? "_" : "") + parts[i];
  return {symbol, profile.empty() ? "default" : profile};
}

std::string symbol_safe(const std::string& symbol) {
  std::string out = symbol;
  for (char& c : out) {
    if (c == '-' || c == '.') c = '_';
    c = static_cast<char>(::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string unit_for(const std::string& instance) {
  return "crypto-agent@" + instance + ".service";
}

std::string_view to_string(SystemdScope s) { return s == SystemdScope::kUser ? "user" : "system"; }

const AgentSpec* Config::find_agent(const std::string& instance) const {
  for (const auto& a : agents) {
    if (a.instance == instance) return &a;
  }
  return nullptr;
}

std::string ConfigError::to_string() const {
  return variable + "=" + value + ": " + message;
}

namespace {
// libpq conninfo value quoting: single quotes, backslash-escaped.
std::string quote(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}
}  // namespace

std::string PostgresConfig::conninfo(int connect_timeout_s) const {
  const std::string timeout = "connect_timeout=" + std::to_string(connect_timeout_s);
  if (!database_url.empty()) {
    // A URI takes parameters after '?'.
    return database_url + (database_url.find('?') == std::string::npos ? "?" : "&") + timeout;
  }
  std::string s = "host=" + quote(host) + " port=" + quote(port) + " user=" + quote(user) +
                  " dbname=" + quote(db) + " " + timeout;
  if (!password.empty()) s += " password=" + quote(password);
  return s;
}

std::string PostgresConfig::describe() const {
  if (!database_url.empty()) {
    // Hide the password part of scheme://user:PW@host as scheme://user:***@host
    static const std::regex re("(://[^:/@]*):[^@]*@");
    return std::regex_replace(database_url, re, "$1:***@");
  }
  return user + "@" + host + ":" + port + "/" + db;
}

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

tl::expected<Config, ConfigError> load_config(const EnvLookup& env) {
  Config c;
  Reader r(env);

  r.str("TRADING_HEAL_RUNTIME_DIR", c.runtime_dir);
  r.str("TRADING_HEAL_DATA_DIR", c.data_dir);
  r.str("TRADING_HEAL_HEARTBEAT_DIR", c.heartbeat_dir);
  r.str("TRADING_HEAL_PROC_ROOT", c.proc_root);
  r.choice("TRADING_HEAL_SYSTEMD_SCOPE", c.scope,
           {{"system", SystemdScope::kSystem}, {"user", SystemdScope::kUser}});
  r.seconds("TRADING_HEAL_INTERVAL", c.interval, 0.05, 3600);
  r.seconds("TRADING_HEAL_STALL_THRESHOLD", c.stall_threshold, 0.1);
  r.integer("TRADING_HEAL_CONSECUTIVE_THRESHOLD", c.consecutive_threshold, 1, 1000);
  r.integer("TRADING_HEAL_DIAGNOSE_AFTER", c.diagnose_after, 1, 1000);
  r.seconds("TRADING_HEAL_CONFIRM_INTERVAL", c.confirm_interval, 0.05, 3600);
  r.integer("TRADING_HEAL_EXHAUSTED_AFTER", c.exhausted_after, 1, 100000);
  r.integer("TRADING_HEAL_MAX_RESTARTS", c.max_restarts, 0, 1000);
  r.integer("TRADING_HEAL_FLEET_MAX_RESTARTS", c.fleet_max_restarts, 0, 100000);
  r.seconds("TRADING_HEAL_COOLDOWN", c.cooldown, 0);
  r.seconds("TRADING_HEAL_BACKOFF_MAX", c.backoff_max, 0);
  r.seconds("TRADING_HEAL_STABLE_AFTER", c.stable_after, 0);
  r.seconds("TRADING_HEAL_RECOVERY_GRACE", c.recovery_grace, 0);
  r.seconds("TRADING_HEAL_STARTUP_GRACE", c.startup_grace, 0);
  r.seconds("TRADING_HEAL_RESTART_TIMEOUT", c.restart_timeout, 0.1, 3600);
  r.integer("TRADING_HEAL_GLOBAL_MIN_AGENTS", c.global_min_agents, 2, 100000);
  c.global_window = c.interval * 2;
  r.seconds("TRADING_HEAL_GLOBAL_WINDOW", c.global_window, 0.05);
  r.integer("TRADING_HEAL_DIAGNOSE_WORKERS", c.diagnose_workers, 1, 64);
  r.seconds("TRADING_HEAL_DIAGNOSIS_CACHE_TTL", c.diagnosis_cache_ttl, 0);
  r.str("TRADING_HEAL_RULES_FILE", c.rules_file);
  if (auto v = r.raw("TRADING_HEAL_PEERS")) {
    for (const auto& kv : split(*v, ',')) {
      const auto eq = kv.find('=');
      const std::string role = kv.substr(0, eq);
      const std::string user = eq == std::string::npos ? std::string() : kv.substr(eq + 1);
      if (role != "probe" && role != "diagnoser" && role != "actuator" && role != "exporter") {
        r.error("TRADING_HEAL_PEERS", kv, "names probe, diagnoser, actuator or exporter: COMPONENT=USER");
        break;
      }
      if (user.empty() || user.find_first_of(" \t:/") != std::string::npos) {
        r.error("TRADING_HEAL_PEERS", kv, "wants COMPONENT=USER with a user name");
        break;
      }
      c.peers[role] = user;
    }
  }
  r.str("TRADING_HEAL_OPERATORS_GROUP", c.operators_group);
  r.str("TRADING_HEAL_CURVE_SECRET_KEY_FILE", c.curve_secret_key_file);
  r.str("TRADING_HEAL_CURVE_SERVER_KEY_FILE", c.curve_server_key_file);
  r.str("TRADING_HEAL_HOSTS_DIR", c.hosts_dir);
  r.str("TRADING_HEAL_RULES_DIR", c.rules_dir);
  r.boolean("TRADING_HEAL_DRY_RUN", c.dry_run);
  if (auto v = r.raw("TRADING_HEAL_LOG_LEVEL")) {
    static const std::vector<std::string> levels{"trace", "debug", "info", "warning", "warn",
                                                 "error", "critical", "off"};
    if (std::find(levels.begin(), levels.end(), *v) == levels.end()) {
      r.error("TRADING_HEAL_LOG_LEVEL", *v, "must be trace, debug, info, warning, error, critical or off");
    } else {
      c.log_level = *v;
    }
  }
  r.listen("TRADING_HEAL_METRICS_LISTEN", c.metrics_listen);
  r.listen("TRADING_HEAL_API_LISTEN", c.api_listen);
  r.str("TRADING_HEAL_API_TOKEN_FILE", c.api_token_file);
  r.boolean("TRADING_HEAL_API_ALLOW_ANONYMOUS", c.api_allow_anonymous);
  if (auto v = r.raw("TRADING_HEAL_API_HOSTS")) {
    for (auto h : split(*v, ',')) {
      while (!h.empty() && h.front() == ' ') h.erase(h.begin());
      while (!h.empty() && h.back() == ' ') h.pop_back();
      if (h.empty()) continue;
      if (h.size() > 253 || h.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != std::string::npos) {
        r.error("TRADING_HEAL_API_HOSTS", h, "must be host names (letters, digits, '.', '-'), comma separated");
        break;
      }
      std::transform(h.begin(), h.end(), h.begin(), ::tolower);
      c.api_hosts.push_back(h);
    }
  }
  r.bytes("TRADING_HEAL_AUDIT_MAX_BYTES", c.audit_max_bytes, 4096);
  r.integer("TRADING_HEAL_AUDIT_KEEP", c.audit_keep, 1, 1000);
  r.choice("TRADING_HEAL_RESTART_BACKEND", c.restart_backend,
           {{"dbus", RestartBackend::kDbus}, {"systemctl", RestartBackend::kSystemctl}});
  // Removed: sudo cannot run in the hardened actuator (NoNewPrivileges=, implied by its sandbox),
  // and the polkit rule grants the same narrow permission over D-Bus. Refused, not ignored, so
  // that an old env file does not quietly change what the actuator may do.
  if (bool sudo = false; (r.boolean("TRADING_HEAL_RESTART_SUDO", sudo), sudo)) {
    r.error("TRADING_HEAL_RESTART_SUDO", "true",
            "is no longer supported: restarts go over D-Bus, allowed by the polkit rule that "
            "deploy.sh installs; remove the setting");
  }
  r.str("TRADING_HEAL_PRE_RESTART_HOOK", c.pre_restart_hook);
  r.str("TRADING_HEAL_POST_RESTART_HOOK", c.post_restart_hook);
  // A hook is a program the privileged actuator runs: named by its absolute path, never looked
  // up in PATH (whoever controls a PATH directory would choose it).
  for (const auto& [name, hook] : {std::pair<const char*, const std::string*>{
                                       "TRADING_HEAL_PRE_RESTART_HOOK", &c.pre_restart_hook},
                                   {"TRADING_HEAL_POST_RESTART_HOOK", &c.post_restart_hook}}) {
    const auto start = hook->find_first_not_of(" \t");
    if (start != std::string::npos && (*hook)[start] != '/') {
      r.error(name, *hook, "must start with the program's absolute path (e.g. /usr/local/bin/notify)");
    }
  }
  r.seconds("TRADING_HEAL_HOOK_TIMEOUT", c.hook_timeout, 0.1);

  r.boolean("OLLAMA_ENABLED", c.ollama.enabled);
  if (auto v = r.raw("OLLAMA_HOST")) {
    if (v->rfind("http://", 0) != 0 && v->rfind("https://", 0) != 0) {
      r.error("OLLAMA_HOST", *v, "must start with http:// or https://");
    } else {
      c.ollama.host = *v;
      while (!c.ollama.host.empty() && c.ollama.host.back() == '/') c.ollama.host.pop_back();
    }
  }
  r.str("OLLAMA_MODEL", c.ollama.model);
  r.seconds("OLLAMA_TIMEOUT", c.ollama.timeout, 0.1, 3600);
  r.choice("OLLAMA_API", c.ollama.api, {{"ollama", LlmApi::kOllama}, {"openai", LlmApi::kOpenAi}});
  r.str("OLLAMA_KEEP_ALIVE", c.ollama.keep_alive);
  // The diagnosis is asked at the first failed check; the restart waits for it at most this long
  // from then: a model's typical 5-15 s and the journal read, never longer than the diagnoser
  // itself waits for the model (it then answers from its rules).
  c.diagnosis_wait = std::min(c.ollama.timeout, milliseconds(15000)) + milliseconds(2000);
  r.seconds("TRADING_HEAL_DIAGNOSIS_WAIT", c.diagnosis_wait, 0);

  r.str("POSTGRES_HOST", c.pg.host);
  r.str("POSTGRES_PORT", c.pg.port);
  r.str("POSTGRES_USER", c.pg.user);
  r.str("POSTGRES_PASSWORD", c.pg.password);
  r.str("POSTGRES_DB", c.pg.db);
  r.str("DATABASE_URL", c.pg.database_url);
  {
    char* end = nullptr;
    long port = std::strtol(c.pg.port.c_str(), &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535) {
      r.error("POSTGRES_PORT", c.pg.port, "must be a port number 1-65535");
    }
  }
  if (!c.pg.database_url.empty() && c.pg.database_url.rfind("postgresql://", 0) != 0 &&
      c.pg.database_url.rfind("postgres://", 0) != 0) {
    PostgresConfig shown;
    shown.database_url = c.pg.database_url;
    r.error("DATABASE_URL", shown.describe(),
            "must be a libpq URI (postgresql://...)");
  }

  const std::string rt = c.runtime_dir;
  // Each component binds in a directory of its own (only it can create or replace its sockets);
  // who may speak on them is the peer guard's decision (PROTOCOL.md "Who may speak").
  c.endpoints = Endpoints{"ipc://" + rt + "/probe/health.sock",     "ipc://" + rt + "/diagnoser/pub.sock",
                          "ipc://" + rt + "/actuator/pub.sock",     "ipc://" + rt + "/actuator/diagnosis.sock",
                          "ipc://" + rt + "/exporter/events.sock",  "ipc://" + rt + "/actuator/control.sock",
                          "ipc://" + rt + "/diagnoser/control.sock"};
  r.str("TRADING_HEAL_HEALTH_ENDPOINT", c.endpoints.health);
  r.str("TRADING_HEAL_DIAGNOSER_PUB_ENDPOINT", c.endpoints.diagnoser_pub);
  r.str("TRADING_HEAL_ACTUATOR_PUB_ENDPOINT", c.endpoints.actuator_pub);
  r.str("TRADING_HEAL_DIAGNOSIS_ENDPOINT", c.endpoints.diagnosis);
  r.str("TRADING_HEAL_EVENTS_ENDPOINT", c.endpoints.events);
  r.str("TRADING_HEAL_CONTROL_ENDPOINT", c.endpoints.actuator_control);
  r.str("TRADING_HEAL_DIAGNOSER_CONTROL_ENDPOINT", c.endpoints.diagnoser_control);
  for (const auto& [name, ep] :
       {std::pair<const char*, std::string>{"TRADING_HEAL_HEALTH_ENDPOINT", c.endpoints.health},
        {"TRADING_HEAL_DIAGNOSER_PUB_ENDPOINT", c.endpoints.diagnoser_pub},
        {"TRADING_HEAL_ACTUATOR_PUB_ENDPOINT", c.endpoints.actuator_pub},
        {"TRADING_HEAL_DIAGNOSIS_ENDPOINT", c.endpoints.diagnosis},
        {"TRADING_HEAL_EVENTS_ENDPOINT", c.endpoints.events},
        {"TRADING_HEAL_CONTROL_ENDPOINT", c.endpoints.actuator_control},
        {"TRADING_HEAL_DIAGNOSER_CONTROL_ENDPOINT", c.endpoints.diagnoser_control}}) {
    if (ep.rfind("ipc://", 0) != 0 && ep.rfind("tcp://", 0) != 0 && ep.rfind("inproc://", 0) != 0) {
      r.error(name, ep, "must be an ipc://, tcp:// or inproc:// endpoint");
    }
    if (ep.rfind("ipc://@", 0) == 0) {
      r.error(name, ep, "abstract ipc sockets have no permission check; use a path");
    }
    // Nothing on tcp without CURVE: a tcp peer has no kernel credentials to check.
    if (ep.rfind("tcp://", 0) == 0 && c.curve_secret_key_file.empty()) {
      r.error(name, ep,
              "tcp:// needs CURVE keys: set TRADING_HEAL_CURVE_SECRET_KEY_FILE (and "
              "TRADING_HEAL_CURVE_SERVER_KEY_FILE where it connects; trading-heal-ctl keygen)");
    }
  }
  if (r.err()) return tl::unexpected(*r.err());

  if (auto file = r.raw("TRADING_HEAL_AGENTS_FILE")) {
    if (auto e = load_agents_file(*file, c)) return tl::unexpected(*e);
  } else {
    const std::string list = r.raw("TRADING_HEAL_AGENTS").value_or(kDefaultAgents);
    for (const auto& instance : split(list, ',')) {
      if (!valid_instance(instance)) {
        return tl::unexpected(ConfigError{
            "TRADING_HEAL_AGENTS", instance,
            "instance must match ^[A-Za-z0-9]+(_[A-Za-z0-9]+)*$ (it becomes part of a unit name)"});
      }
      if (c.find_agent(instance) != nullptr) {
        return tl::unexpected(ConfigError{"TRADING_HEAL_AGENTS", instance, "listed twice"});
      }
      c.agents.push_back(default_agent(instance, c.heartbeat_dir));
    }
    if (c.agents.empty()) {
      return tl::unexpected(ConfigError{"TRADING_HEAL_AGENTS", list, "lists no agents"});
    }
  }
  if (c.exhausted_after < c.consecutive_threshold) {
    return tl::unexpected(ConfigError{"TRADING_HEAL_EXHAUSTED_AFTER",
                                      std::to_string(c.exhausted_after),
                                      "must be >= TRADING_HEAL_CONSECUTIVE_THRESHOLD"});
  }
  return c;
}

std::vector<std::string> foreign_secrets(const EnvLookup& env, const std::string& component) {
  std::vector<std::string> found;
  const auto check = [&](const char* owner, std::initializer_list<const char*> names) {
    if (component == owner) return;
    for (const char* n : names) {
      if (auto v = env(n); v && !v->empty()) found.emplace_back(n);
    }
  };
  check("probe", {"POSTGRES_PASSWORD", "DATABASE_URL", "PGPASSWORD"});
  check("diagnoser", {"OLLAMA_HOST"});
  return found;
}

}  // namespace trading_heal::common
