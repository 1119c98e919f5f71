// Configuration: defaults, every validation naming the variable and value, the agents file.
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>

#include "trading_heal/common/config.hpp"

namespace trading_heal::common {
namespace {

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& k) -> std::optional<std::string> {
    auto it = vars.find(k);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(Config, DefaultsMatchTheSpec) {
  auto c = load_config(env_of({}));
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->agents.size(), 6u);
  EXPECT_EQ(c->agents[0].instance, "BTC_USDT");
  EXPECT_EQ(c->agents[0].unit, "crypto-agent@BTC_USDT.service");
  EXPECT_EQ(c->agents[0].symbol, "BTC-USDT");
  EXPECT_EQ(c->agents[0].profile, "default");
  EXPECT_EQ(c->agents[0].heartbeat_path, "/tmp/crypto_agent_BTC_USDT_heartbeat");
  EXPECT_EQ(c->interval, std::chrono::seconds(30));
  EXPECT_EQ(c->stall_threshold, std::chrono::seconds(600));
  EXPECT_EQ(c->max_restarts, 3);
  EXPECT_EQ(c->cooldown, std::chrono::seconds(60));
  EXPECT_EQ(c->diagnosis_wait, std::chrono::seconds(17));
  EXPECT_EQ(c->confirm_interval, std::chrono::seconds(2));
  EXPECT_EQ(c->consecutive_threshold, 2);
  EXPECT_EQ(c->diagnose_after, 1);
  EXPECT_EQ(c->global_window, std::chrono::seconds(60));
  EXPECT_EQ(c->ollama.host, "http://127.0.0.1:11434");
  EXPECT_EQ(c->ollama.model, "qwen2.5-coder:7b");
  EXPECT_EQ(c->pg.host, "127.0.0.1");
  EXPECT_EQ(c->pg.port, "5433");
  EXPECT_TRUE(c->pg.password.empty());
  EXPECT_EQ(c->scope, SystemdScope::kSystem);
  EXPECT_EQ(c->endpoints.health, "ipc:///run/trading-heal/probe/health.sock");
  EXPECT_EQ(c->data_dir, "/var/lib/trading-heal");
  EXPECT_EQ(c->proc_root, "/proc");
  EXPECT_EQ(c->startup_grace, std::chrono::seconds(120));
  EXPECT_EQ(c->restart_timeout, std::chrono::seconds(30));
}

TEST(Config, DerivedDefaultsFollowTheirBase) {
  auto c = load_config(env_of({{"TRADING_HEAL_INTERVAL", "1.5"},
                               {"OLLAMA_TIMEOUT", "2"},
                               {"TRADING_HEAL_RUNTIME_DIR", "/tmp/x"}}));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->interval, std::chrono::milliseconds(1500));
  EXPECT_EQ(c->global_window, std::chrono::milliseconds(3000));
  EXPECT_EQ(c->diagnosis_wait, std::chrono::milliseconds(4000));
  EXPECT_EQ(c->endpoints.events, "ipc:///tmp/x/exporter/events.sock");
}

TEST(Config, ProfilesAndSymbols) {
  EXPECT_EQ(symbol_and_profile("BTC_USDT_conservative"),
            std::make_pair(std::string("BTC-USDT"), std::string("conservative")));
  EXPECT_EQ(symbol_and_profile("ETH_USDT"),
            std::make_pair(std::string("ETH-USDT"), std::string("default")));
  EXPECT_EQ(symbol_and_profile("ETH_USDT_mean_revert"),
            std::make_pair(std::string("ETH-USDT"), std::string("mean_revert")));
  EXPECT_EQ(symbol_safe("btc-usdt.p"), "BTC_USDT_P");
  auto c = load_config(env_of({{"TRADING_HEAL_AGENTS", "BTC_USDT_conservative, ETH_USDT"},
                               {"TRADING_HEAL_HEARTBEAT_DIR", "/run/hb"}}));
  ASSERT_TRUE(c);
  ASSERT_EQ(c->agents.size(), 2u);
  EXPECT_EQ(c->agents[0].heartbeat_path, "/run/hb/crypto_agent_BTC_USDT_heartbeat");
  EXPECT_EQ(c->agents[1].instance, "ETH_USDT");
}

struct Bad {
  std::string var;
  std::string value;
  std::string message_contains;
};

TEST(Config, RejectsBadValuesNamingVariableAndValue) {
  const std::vector<Bad> cases{
      {"TRADING_HEAL_AGENTS", "BTC USDT", "must match"},
      {"TRADING_HEAL_AGENTS", "BTC_USDT.service sshd", "must match"},
      {"TRADING_HEAL_AGENTS", "../x", "must match"},
      {"TRADING_HEAL_AGENTS", "BTC_USDT,BTC_USDT", "twice"},
      {"TRADING_HEAL_INTERVAL", "0", "> 0"},
      {"TRADING_HEAL_INTERVAL", "-5", "> 0"},
      {"TRADING_HEAL_INTERVAL", "thirty", "seconds"},
      {"TRADING_HEAL_SYSTEMD_SCOPE", "session", "system or user"},
      {"TRADING_HEAL_MAX_RESTARTS", "3x", "integer"},
      {"TRADING_HEAL_DRY_RUN", "maybe", "true or false"},
      {"TRADING_HEAL_LOG_LEVEL", "loud", "must be"},
      {"TRADING_HEAL_METRICS_LISTEN", "9120", "HOST:PORT"},
      {"TRADING_HEAL_API_LISTEN", "127.0.0.1:99999", "port"},
      {"OLLAMA_HOST", "127.0.0.1:11434", "http://"},
      {"OLLAMA_TIMEOUT", "0", "seconds"},
      {"OLLAMA_API", "anthropic", "ollama or openai"},
      {"POSTGRES_PORT", "54x", "port"},
      {"TRADING_HEAL_HEALTH_ENDPOINT", "ipc://@abstract", "abstract"},
      {"TRADING_HEAL_EVENTS_ENDPOINT", "udp://x", "endpoint"},
      {"TRADING_HEAL_RESTART_BACKEND", "ssh", "dbus or systemctl"},
      {"TRADING_HEAL_RESTART_SUDO", "true", "polkit rule"},
      {"TRADING_HEAL_STARTUP_GRACE", "-1", "seconds"},
      {"TRADING_HEAL_RESTART_TIMEOUT", "0", "seconds"},
      {"TRADING_HEAL_PRE_RESTART_HOOK", "notify-oncall --page", "absolute path"},
      {"TRADING_HEAL_POST_RESTART_HOOK", "./hooks/post.sh", "absolute path"},
      {"TRADING_HEAL_STALL_THRESHOLD", "Auto", "seconds > 0 and <= 86400 (or auto)"},
      {"TRADING_HEAL_STALL_THRESHOLD", "0", "(or auto)"},
      {"TRADING_HEAL_STALL_THRESHOLD_MIN", "0", "seconds > 0"},
      {"TRADING_HEAL_STALL_THRESHOLD_MAX", "1h", "seconds"},
      // Alone it is over the default maximum (3600 s).
      {"TRADING_HEAL_STALL_THRESHOLD_MIN", "4000", "must be <= TRADING_HEAL_STALL_THRESHOLD_MAX"},
  };
  for (const auto& b : cases) {
    auto c = load_config(env_of({{b.var, b.value}}));
    ASSERT_FALSE(c) << b.var << "=" << b.value << " was accepted";
    EXPECT_EQ(c.error().variable, b.var);
    // The bad value (or the bad element of a list) is named.
    EXPECT_FALSE(c.error().value.empty());
    EXPECT_NE(b.value.find(c.error().value), std::string::npos) << c.error().to_string();
    EXPECT_NE(c.error().to_string().find(b.var + "=" + c.error().value), std::string::npos);
    EXPECT_NE(c.error().message.find(b.message_contains), std::string::npos)
        << c.error().to_string();
  }
}

// Many hosts, the model in the centre: a diagnoser is the centre's (MODEL) or a host's
// (MODEL_RELAY), never both; the centre's may have no agents of its own.
TEST(Config, TheModelIsTheCentresOrAHostsNeverBoth) {
  auto both =
      load_config(env_of({{"TRADING_HEAL_MODEL_ENDPOINT", "ipc:///run/th/d/model.sock"},
                          {"TRADING_HEAL_MODEL_RELAY_ENDPOINT", "ipc:///run/th/p/m.sock"}}));
  ASSERT_FALSE(both);
  EXPECT_EQ(both.error().variable, "TRADING_HEAL_MODEL_RELAY_ENDPOINT");
  EXPECT_NE(both.error().message.find("set one of them"), std::string::npos);
  auto centre = load_config(env_of({{"TRADING_HEAL_MODEL_ENDPOINT", "ipc:///run/th/d/model.sock"},
                                    {"TRADING_HEAL_AGENTS", ","}}));
  ASSERT_TRUE(centre) << centre.error().to_string();
  EXPECT_TRUE(centre->agents.empty());
  EXPECT_EQ(centre->endpoints.model, "ipc:///run/th/d/model.sock");
  auto none = load_config(env_of({{"TRADING_HEAL_AGENTS", ","}}));
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("TRADING_HEAL_MODEL_ENDPOINT"), std::string::npos);
  auto bad = load_config(env_of({{"TRADING_HEAL_ANALYSIS_ENDPOINT", "udp://x"}}));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().variable, "TRADING_HEAL_ANALYSIS_ENDPOINT");
}

TEST(Config, AutoThresholdKeepsItsFallbackWithinMinAndMax) {
  auto fixed = load_config(env_of({{"TRADING_HEAL_STALL_THRESHOLD", "90"}}));
  ASSERT_TRUE(fixed) << fixed.error().to_string();
  EXPECT_FALSE(fixed->stall_threshold_auto);
  EXPECT_EQ(fixed->stall_threshold, std::chrono::seconds(90));
  EXPECT_EQ(fixed->largest_stall_threshold(), std::chrono::seconds(90)) << "MAX applies to auto";
  auto def = load_config(env_of({{"TRADING_HEAL_STALL_THRESHOLD", "auto"}}));
  ASSERT_TRUE(def) << def.error().to_string();
  EXPECT_TRUE(def->stall_threshold_auto);
  EXPECT_EQ(def->stall_threshold, std::chrono::seconds(600)) << "until the history is enough";
  EXPECT_EQ(def->stall_threshold_min, std::chrono::seconds(300));
  EXPECT_EQ(def->stall_threshold_max, std::chrono::seconds(3600));
  EXPECT_EQ(def->largest_stall_threshold(), std::chrono::seconds(3600));
  auto high = load_config(env_of(
      {{"TRADING_HEAL_STALL_THRESHOLD", "auto"}, {"TRADING_HEAL_STALL_THRESHOLD_MIN", "900"}}));
  ASSERT_TRUE(high);
  EXPECT_EQ(high->stall_threshold, std::chrono::seconds(900)) << "600 s clamped up to MIN";
  auto low = load_config(env_of({{"TRADING_HEAL_STALL_THRESHOLD", "auto"},
                                 {"TRADING_HEAL_STALL_THRESHOLD_MIN", "5"},
                                 {"TRADING_HEAL_STALL_THRESHOLD_MAX", "120"}}));
  ASSERT_TRUE(low);
  EXPECT_EQ(low->stall_threshold, std::chrono::seconds(120)) << "600 s clamped down to MAX";
  EXPECT_EQ(low->largest_stall_threshold(), std::chrono::seconds(120));
  // MIN over MAX: the error names both settings and both values.
  auto crossed = load_config(env_of({{"TRADING_HEAL_STALL_THRESHOLD", "auto"},
                                     {"TRADING_HEAL_STALL_THRESHOLD_MIN", "600"},
                                     {"TRADING_HEAL_STALL_THRESHOLD_MAX", "120"}}));
  ASSERT_FALSE(crossed);
  EXPECT_EQ(crossed.error().to_string(),
            "TRADING_HEAL_STALL_THRESHOLD_MIN=600: must be <= TRADING_HEAL_STALL_THRESHOLD_MAX "
            "(120)");
}

TEST(Config, DatabaseUrlWinsAndIsNeverShownWithItsPassword) {
  auto c = load_config(env_of({{"DATABASE_URL", "postgresql://ro:hunter22@127.0.0.1:5432/db"},
                               {"POSTGRES_HOST", "127.0.0.2"}}));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->pg.conninfo(3), "postgresql://ro:hunter22@127.0.0.1:5432/db?connect_timeout=3");
  EXPECT_EQ(c->pg.describe(), "postgresql://ro:***@127.0.0.1:5432/db");
  auto bad = load_config(env_of({{"DATABASE_URL", "mysql://u:pw1234@h/db"}}));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().value.find("pw1234"), std::string::npos);
}

TEST(Config, ConninfoQuotesValues) {
  auto c = load_config(env_of({{"POSTGRES_PASSWORD", "it's"}, {"POSTGRES_USER", "a b"}}));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->pg.conninfo(2),
            "host='127.0.0.1' port='5433' user='a b' dbname='postgres' connect_timeout=2 "
            "password='it\\'s'");
}

class AgentsFile : public ::testing::Test {
 protected:
  // One file per test process: ctest runs this suite's tests in parallel processes, and one's
  // TearDown must not remove the file another is reading.
  std::string path_ = ::testing::TempDir() + "/agents-" + std::to_string(::getpid()) + ".json";
  void write(const std::string& text) { std::ofstream(path_) << text; }
  void TearDown() override { std::remove(path_.c_str()); }
};

TEST_F(AgentsFile, LoadsPerAgentSettings) {
  write(R"({"agents":[{"instance":"BTC_USDT_conservative","process_pattern":"trading_agent.py.*BTC",
            "heartbeat_path":"/tmp/hb_btc"},{"instance":"ETH_USDT","enabled":false}]})");
  auto c = load_config(env_of({{"TRADING_HEAL_AGENTS_FILE", path_}}));
  ASSERT_TRUE(c) << c.error().to_string();
  ASSERT_EQ(c->agents.size(), 2u);
  EXPECT_EQ(c->agents[0].profile, "conservative");
  EXPECT_EQ(c->agents[0].process_pattern, "trading_agent.py.*BTC");
  EXPECT_EQ(c->agents[0].heartbeat_path, "/tmp/hb_btc");
  EXPECT_FALSE(c->agents[1].enabled);
}

TEST_F(AgentsFile, RejectsForeignUnitsBadJsonAndBadInstances) {
  for (const std::string& text :
       {std::string(R"([{"instance":"BTC_USDT","unit":"sshd.service"}])"),
        std::string(R"([{"instance":"BTC_USDT"},)"), std::string(R"([{"instance":"a;b"}])"),
        std::string(R"([{"symbol":"BTC-USDT"}])"), std::string(R"([])"),
        std::string(R"([{"instance":"BTC_USDT","process_pattern":"("}])")}) {
    write(text);
    auto c = load_config(env_of({{"TRADING_HEAL_AGENTS_FILE", path_}}));
    ASSERT_FALSE(c) << text;
    EXPECT_EQ(c.error().variable, "TRADING_HEAL_AGENTS_FILE") << text;
  }
  auto missing = load_config(env_of({{"TRADING_HEAL_AGENTS_FILE", "/nonexistent/agents.json"}}));
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().to_string().find("cannot be read"), std::string::npos);
}

}  // namespace

// A shared env file that still holds the database's or the model's settings is named (never
// its values) to the daemons that should not have them.
TEST(Config, ForeignSecretsAreNamedNotShown) {
  const auto env = env_of({{"POSTGRES_PASSWORD", "planted-pg-secret"},
                           {"OLLAMA_HOST", "http://u:planted@127.0.0.1:11434"},
                           {"DATABASE_URL", ""}});
  EXPECT_EQ(foreign_secrets(env, "probe"), std::vector<std::string>{"OLLAMA_HOST"});
  EXPECT_EQ(foreign_secrets(env, "diagnoser"), std::vector<std::string>{"POSTGRES_PASSWORD"});
  EXPECT_EQ(foreign_secrets(env, "exporter"),
            (std::vector<std::string>{"POSTGRES_PASSWORD", "OLLAMA_HOST"}));
  EXPECT_TRUE(foreign_secrets(env_of({}), "actuator").empty());
}

}  // namespace trading_heal::common
