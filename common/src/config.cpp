// Loading and validating the configuration from the environment and the agents file.
#include "trading_heal/common/config.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "reader.hpp"

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

AgentSpec default_agent(const std::string& instance, const std::string& heartbeat_dir) {
  AgentSpec a;
  a.instance = instance;
  a.unit = unit_for(instance);
  std::tie(a.symbol, a.profile) = symbol_and_profile(instance);
  a.heartbeat_path = heartbeat_dir + "/crypto_agent_" + symbol_safe(a.symbol) + "_heartbeat";
  return a;
}

// One entry of the agents file, checked; the error names the entry (`where`).
tl::expected<AgentSpec, ConfigError> agent_entry(const nlohmann::json& item,
                                                 const std::string& where,
                                                 const std::string& heartbeat_dir) {
  const std::string var = "TRADING_HEAL_AGENTS_FILE";
  if (!item.is_object() || !item.contains("instance") || !item["instance"].is_string()) {
    return tl::unexpected(ConfigError{var, where, "needs a string \"instance\""});
  }
  const std::string instance = item["instance"];
  if (!valid_instance(instance)) {
    return tl::unexpected(
        ConfigError{var, instance, where + ": instance must match ^[A-Za-z0-9]+(_[A-Za-z0-9]+)*$"});
  }
  AgentSpec a = default_agent(instance, heartbeat_dir);
  std::string unit = a.unit;
  for (auto [key, out] : {std::pair<const char*, std::string*>{"symbol", &a.symbol},
                          {"profile", &a.profile},
                          {"unit", &unit},
                          {"process_pattern", &a.process_pattern},
                          {"heartbeat_path", &a.heartbeat_path}}) {
    if (!item.contains(key)) continue;
    if (!item[key].is_string()) {
      return tl::unexpected(ConfigError{var, where, std::string(key) + " must be a string"});
    }
    *out = item[key].get<std::string>();
  }
  if (unit != a.unit) {
    return tl::unexpected(ConfigError{
        var, unit,
        where + ": unit must be " + a.unit + " (trading-heal restarts crypto-agent@ units only)"});
  }
  if (item.contains("enabled")) {
    if (!item["enabled"].is_boolean()) {
      return tl::unexpected(ConfigError{var, where, "enabled must be a boolean"});
    }
    a.enabled = item["enabled"];
  }
  if (!a.process_pattern.empty()) {
    try {
      std::regex check(a.process_pattern, std::regex::extended);
    } catch (const std::regex_error&) {
      return tl::unexpected(
          ConfigError{var, a.process_pattern, where + ": process_pattern is not a valid regex"});
    }
  }
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
    auto a = agent_entry(item, where, cfg.heartbeat_dir);
    if (!a) return a.error();
    if (cfg.find_agent(a->instance) != nullptr) {
      return ConfigError{var, a->instance, where + ": instance listed twice"};
    }
    cfg.agents.push_back(std::move(*a));
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

std::string ConfigError::to_string() const { return variable + "=" + value + ": " + message; }

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
  detail::Reader r(env);

  // Every setting of the table (settings.cpp), in order; the first bad value is the error.
  detail::read_settings(r, c);
  if (r.err()) return tl::unexpected(*r.err());

  if (auto file = r.raw("TRADING_HEAL_AGENTS_FILE")) {
    if (auto e = load_agents_file(*file, c)) return tl::unexpected(*e);
    c.agents_listed = true;
  } else {
    c.agents_listed = r.raw("TRADING_HEAL_AGENTS").has_value();
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
    // A centre (it collects other hosts' state, its diagnoser answers their model requests) may
    // have no agents of its own.
    if (c.agents.empty() && c.endpoints.state.empty() && c.endpoints.model.empty()) {
      return tl::unexpected(
          ConfigError{"TRADING_HEAL_AGENTS", list,
                      "lists no agents (only a centre, with TRADING_HEAL_STATE_ENDPOINT or "
                      "TRADING_HEAL_MODEL_ENDPOINT, may have none)"});
    }
  }
  if (!c.endpoints.model.empty() && !c.endpoints.model_relay.empty()) {
    return tl::unexpected(ConfigError{
        "TRADING_HEAL_MODEL_RELAY_ENDPOINT", c.endpoints.model_relay,
        "is a host's (its diagnoser asks the centre), TRADING_HEAL_MODEL_ENDPOINT the centre's "
        "(its diagnoser answers the hosts): set one of them"});
  }
  if (c.stall_threshold_min > c.stall_threshold_max) {
    return tl::unexpected(
        ConfigError{"TRADING_HEAL_STALL_THRESHOLD_MIN",
                    r.raw("TRADING_HEAL_STALL_THRESHOLD_MIN").value_or("300"),
                    "must be <= TRADING_HEAL_STALL_THRESHOLD_MAX (" +
                        r.raw("TRADING_HEAL_STALL_THRESHOLD_MAX").value_or("3600") + ")"});
  }
  if (c.stall_threshold_auto) {
    // Until an agent's history is enough: the default, within the bounds it could learn.
    c.stall_threshold =
        std::clamp(milliseconds(600000), c.stall_threshold_min, c.stall_threshold_max);
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
