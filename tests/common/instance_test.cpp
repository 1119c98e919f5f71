// How ctl and tap find a deployment: the env file parsed as systemd does, the instance chosen,
// and the lookup order (caller > env file > the units' settings).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "trading_heal/common/instance.hpp"

namespace trading_heal::common {
namespace {

namespace fs = std::filesystem;

TEST(ParseEnvFile, ReadsWhatSystemdReads) {
  const auto m = parse_env_file(
      "# comment\n; also a comment\n\n  TRADING_HEAL_API_LISTEN = 127.0.0.1:9121 \n"
      "A=\"quoted \\\"x\\\" \\\\ y\"\nB='single # not a comment'\nC=\nnot a line\nA=later\r\n");
  EXPECT_EQ(m.at("TRADING_HEAL_API_LISTEN"), "127.0.0.1:9121");
  EXPECT_EQ(m.at("A"), "later");
  EXPECT_EQ(m.at("B"), "single # not a comment");
  EXPECT_EQ(m.at("C"), "");
  EXPECT_EQ(m.count("not a line"), 0U);
  EXPECT_EQ(parse_env_file("X=\"a \\\"b\\\"\"").at("X"), "a \"b\"");
}

class FindInstance : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("th-instance-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    dirs_.system_env_dir = (root_ / "etc").string();
    dirs_.system_runtime_dir = "/run/trading-heal";
    dirs_.user_env_dir = (root_ / "user").string();
    dirs_.user_runtime_dir = "/run/user/1000/trading-heal";
  }
  void TearDown() override { fs::remove_all(root_); }
  void write(const std::string& dir, const std::string& name, const std::string& text) {
    fs::create_directories(dir);
    std::ofstream(dir + "/" + name) << text;
  }
  static EnvLookup env(std::map<std::string, std::string> m) {
    return [m](const std::string& k) -> std::optional<std::string> {
      auto it = m.find(k);
      if (it == m.end()) return std::nullopt;
      return it->second;
    };
  }
  fs::path root_;
  InstanceDirs dirs_;
};

TEST_F(FindInstance, TheOnlySystemDeploymentWithTheUnitsRuntimeDir) {
  write(dirs_.system_env_dir, "prod.env", "TRADING_HEAL_API_LISTEN=127.0.0.1:9999\n");
  write(dirs_.system_env_dir, ".prod.env.deployed", "checksum");
  // The deployment's per-daemon files are not deployments of their own.
  write(dirs_.system_env_dir, "prod.probe.env", "DATABASE_URL=postgresql://x@127.0.0.1/db\n");
  write(dirs_.system_env_dir, "prod.diagnoser.env", "OLLAMA_HOST=http://127.0.0.1:11434\n");
  auto i = find_instance(std::nullopt, false, env({}), dirs_);
  ASSERT_TRUE(i) << i.error();
  EXPECT_EQ(i->name, "prod");
  EXPECT_EQ(i->scope, SystemdScope::kSystem);
  EXPECT_EQ(i->env("TRADING_HEAL_RUNTIME_DIR"), "/run/trading-heal/prod");
  EXPECT_EQ(i->env("TRADING_HEAL_API_LISTEN"), "127.0.0.1:9999");
  EXPECT_NE(i->describe().find(dirs_.system_env_dir + "/prod.env"), std::string::npos);
  auto cfg = load_config(i->env);
  ASSERT_TRUE(cfg) << cfg.error().to_string();
  EXPECT_EQ(cfg->endpoints.actuator_control, "ipc:///run/trading-heal/prod/actuator/control.sock");
}

TEST_F(FindInstance, EnvFileOverridesTheUnitsAndTheCallerOverridesBoth) {
  write(dirs_.system_env_dir, "main.env", "TRADING_HEAL_RUNTIME_DIR=/srv/th\nOLLAMA_TIMEOUT=9\n");
  auto i = find_instance(std::nullopt, false, env({{"OLLAMA_TIMEOUT", "3"}}), dirs_);
  ASSERT_TRUE(i) << i.error();
  EXPECT_EQ(i->env("TRADING_HEAL_RUNTIME_DIR"), "/srv/th");
  EXPECT_EQ(i->env("OLLAMA_TIMEOUT"), "3");
}

TEST_F(FindInstance, SeveralDeploymentsNeedANameUnlessOneIsMain) {
  write(dirs_.system_env_dir, "a.env", "");
  write(dirs_.system_env_dir, "b.env", "");
  auto none = find_instance(std::nullopt, false, env({}), dirs_);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().find("a, b"), std::string::npos) << none.error();
  EXPECT_NE(none.error().find("--instance"), std::string::npos);
  auto b = find_instance("b", false, env({}), dirs_);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->name, "b");
  auto by_env = find_instance(std::nullopt, false, env({{"TRADING_HEAL_INSTANCE", "a"}}), dirs_);
  ASSERT_TRUE(by_env);
  EXPECT_EQ(by_env->name, "a");
  write(dirs_.system_env_dir, "main.env", "");
  auto main = find_instance(std::nullopt, false, env({}), dirs_);
  ASSERT_TRUE(main);
  EXPECT_EQ(main->name, "main");
  EXPECT_FALSE(find_instance("../etc", false, env({}), dirs_));
}

TEST_F(FindInstance, UserDeploymentsUseTheUserRuntimeDir) {
  write(dirs_.user_env_dir, "dev.env", "");
  auto i = find_instance(std::nullopt, false, env({}), dirs_);  // none in the system dir
  ASSERT_TRUE(i) << i.error();
  EXPECT_EQ(i->scope, SystemdScope::kUser);
  EXPECT_EQ(i->env("TRADING_HEAL_RUNTIME_DIR"), "/run/user/1000/trading-heal/dev");
  EXPECT_EQ(i->env("TRADING_HEAL_SYSTEMD_SCOPE"), "user");
  write(dirs_.system_env_dir, "dev.env", "");
  auto u = find_instance("dev", true, env({}), dirs_);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->scope, SystemdScope::kUser);
}

TEST_F(FindInstance, NothingInstalledIsMainWithTheUnitsDefaults) {
  auto i = find_instance(std::nullopt, false, env({}), dirs_);
  ASSERT_TRUE(i);
  EXPECT_EQ(i->name, "main");
  EXPECT_TRUE(i->env_file.empty());
  EXPECT_EQ(i->env("TRADING_HEAL_RUNTIME_DIR"), "/run/trading-heal/main");
}

TEST_F(FindInstance, AnUnreadableEnvDirIsNamed) {
  // Not a directory: unreadable as a directory even for root (the tests run as root).
  fs::create_directories(root_);
  std::ofstream(dirs_.system_env_dir) << "x";
  auto i = find_instance(std::nullopt, false, env({}), dirs_);
  ASSERT_FALSE(i);
  EXPECT_NE(i.error().find("cannot read " + dirs_.system_env_dir), std::string::npos) << i.error();
}

TEST_F(FindInstance, AnUnreadableEnvFileIsNamed) {
  // A link to nowhere: unreadable even for root (the tests run as root).
  fs::create_directories(dirs_.system_env_dir);
  fs::create_symlink(root_ / "nowhere", dirs_.system_env_dir + "/main.env");
  auto i = find_instance(std::nullopt, false, env({}), dirs_);
  ASSERT_FALSE(i);
  EXPECT_NE(i.error().find(dirs_.system_env_dir + "/main.env"), std::string::npos) << i.error();
}

}  // namespace
}  // namespace trading_heal::common
