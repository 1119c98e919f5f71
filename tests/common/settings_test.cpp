// The settings table is the one source of truth: the README's table is its output, every
// setting is in an env example and every env example line is a setting, each binary's --help
// lists the settings it reads, and the defaults shown are the ones a configuration gets.
#include "trading_heal/common/settings.hpp"

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "support/bed.hpp"
#include "trading_heal/common/config.hpp"

namespace trading_heal::common {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Settings, TheReadmeTableIsTheTablesOutput) {
  const std::string readme = slurp(test::Bed::source_dir() + "/README.md");
  const auto begin = readme.find("<!-- settings: generated");
  const auto end = readme.find("<!-- settings end -->");
  ASSERT_NE(begin, std::string::npos);
  ASSERT_NE(end, std::string::npos);
  const auto first = readme.find('\n', begin) + 1;
  EXPECT_EQ(readme.substr(first, end - first), settings_markdown())
      << "README.md's settings table differs from the table: paste `trading-heal-ctl settings "
         "--markdown` between its markers";
}

TEST(Settings, EveryEnvExampleLineIsASettingAndEverySettingIsInOne) {
  std::string examples;
  for (const char* f :
       {"trading-heal.env.example", "trading-heal.probe.env.example",
        "trading-heal.diagnoser.env.example", "trading-heal.exporter.env.example"}) {
    examples += slurp(test::Bed::source_dir() + "/deploy/" + f);
  }
  std::set<std::string> table;
  for (const auto& d : setting_docs()) table.insert(d.name);
  const std::regex line(R"(^#?([A-Z][A-Z0-9_]*)=)", std::regex::multiline);
  std::set<std::string> named;
  for (auto it = std::sregex_iterator(examples.begin(), examples.end(), line);
       it != std::sregex_iterator(); ++it) {
    named.insert((*it)[1]);
  }
  for (const auto& n : table) EXPECT_EQ(named.count(n), 1U) << n << " is not in an env example";
  for (const auto& n : named) EXPECT_EQ(table.count(n), 1U) << n << " (env example) is no setting";
  EXPECT_GE(table.size(), 60U);
}

TEST(Settings, EachBinarysHelpListsWhatItReads) {
  const std::string probe = settings_help(kProbe);
  const std::string actuator = settings_help(kActuator);
  EXPECT_NE(probe.find("TRADING_HEAL_CONFIRM_INTERVAL [2]"), std::string::npos) << probe;
  EXPECT_NE(probe.find("POSTGRES_PASSWORD\n"), std::string::npos) << "no default shown";
  EXPECT_EQ(probe.find("OLLAMA_MODEL"), std::string::npos) << "the diagnoser's, not the probe's";
  EXPECT_NE(actuator.find("TRADING_HEAL_DIAGNOSIS_WAIT [min(OLLAMA_TIMEOUT, 15) + 2]"),
            std::string::npos);
  EXPECT_EQ(actuator.find("TRADING_HEAL_RESTART_SUDO"), std::string::npos)
      << "removed: refused only";
  EXPECT_NE(settings_help(kCtl).find("TRADING_HEAL_CONTROL_ENDPOINT"), std::string::npos);
}

TEST(Settings, TheDefaultsShownAreTheConfigurationsDefaults) {
  const auto c = load_config([](const std::string&) { return std::optional<std::string>(); });
  ASSERT_TRUE(c);
  std::map<std::string, std::string> shown;
  std::set<std::string> names;
  for (const auto& d : setting_docs()) {
    EXPECT_TRUE(names.insert(d.name).second) << d.name << " listed twice";
    shown[d.name] = d.default_text;
  }
  EXPECT_EQ(shown["TRADING_HEAL_INTERVAL"], "30");
  EXPECT_EQ(shown["TRADING_HEAL_STALL_THRESHOLD"], "600");
  EXPECT_EQ(shown["TRADING_HEAL_AUDIT_MAX_BYTES"], std::to_string(c->audit_max_bytes));
  EXPECT_EQ(shown["TRADING_HEAL_HEALTH_ENDPOINT"], c->endpoints.health);
  EXPECT_EQ(shown["OLLAMA_HOST"], c->ollama.host);
  EXPECT_EQ(shown["POSTGRES_PASSWORD"], "");
  EXPECT_EQ(shown["TRADING_HEAL_AGENTS"], "BTC_USDT,ETH_USDT,XRP_USDT,SOL_USDT,DOGE_USDT,ADA_USDT");
  // A changed setting shows in the loaded configuration, not in the defaults.
  auto set = load_config([](const std::string& n) -> std::optional<std::string> {
    if (n == "TRADING_HEAL_INTERVAL") return "5";
    return std::nullopt;
  });
  ASSERT_TRUE(set);
  EXPECT_EQ(set->interval, std::chrono::milliseconds(5000));
  EXPECT_EQ(set->global_window, std::chrono::milliseconds(10000)) << "derived after the interval";
}

TEST(Settings, ShadowModeRecordsInsteadOfRestarting) {
  auto with = [](const char* mode) {
    return load_config([mode](const std::string& n) -> std::optional<std::string> {
      if (n == "TRADING_HEAL_MODE") return std::string(mode);
      return std::nullopt;
    });
  };
  auto shadow = with("shadow");
  ASSERT_TRUE(shadow);
  EXPECT_TRUE(shadow->shadow);
  EXPECT_TRUE(shadow->dry_run) << "shadow restarts nothing";
  auto enforce = with("enforce");
  ASSERT_TRUE(enforce);
  EXPECT_FALSE(enforce->dry_run);
  auto bad = with("dry");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().variable, "TRADING_HEAL_MODE");
  EXPECT_NE(bad.error().message.find("enforce or shadow"), std::string::npos)
      << bad.error().message;
}

}  // namespace
}  // namespace trading_heal::common
