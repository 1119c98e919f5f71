// The exporter's start: its API token (the unit's credential before the settings' file), and an
// API open to the network without one refused by name.
#include "trading_heal/exporter/startup.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace {

namespace fs = std::filesystem;
using trading_heal::exporter::load_startup;

class Startup : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("th-startup-" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "creds");
    env_["TRADING_HEAL_RUNTIME_DIR"] = (dir_ / "run").string();
    env_["TRADING_HEAL_DATA_DIR"] = (dir_ / "data").string();
  }
  void TearDown() override { fs::remove_all(dir_); }
  auto load(const char* creds = nullptr) {
    return load_startup(
        [this](const std::string& k) -> std::optional<std::string> {
          auto it = env_.find(k);
          return it == env_.end() ? std::nullopt : std::optional<std::string>(it->second);
        },
        creds);
  }
  std::string file(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }

  fs::path dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(Startup, LoopbackNeedsNoToken) {
  auto s = load();
  ASSERT_TRUE(s) << s.error().to_string();
  EXPECT_TRUE(s->token.empty());
}

TEST_F(Startup, AnApiOpenToTheNetworkWithoutATokenIsRefusedByName) {
  env_["TRADING_HEAL_API_LISTEN"] = "0.0.0.0:9121";
  auto s = load();
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().variable, "TRADING_HEAL_API_LISTEN");
  env_["TRADING_HEAL_API_ALLOW_ANONYMOUS"] = "true";
  EXPECT_TRUE(load()) << "on purpose";
  env_.erase("TRADING_HEAL_API_ALLOW_ANONYMOUS");
  env_["TRADING_HEAL_API_TOKEN_FILE"] = file("token", "  s3cret-token\n");
  auto t = load();
  ASSERT_TRUE(t) << t.error().to_string();
  EXPECT_EQ(t->token, "s3cret-token");
}

TEST_F(Startup, ABadTokenFileIsNamed) {
  for (const auto& [text, why] :
       std::map<std::string, std::string>{{"", "empty"}, {"two words", "whitespace"}}) {
    env_["TRADING_HEAL_API_TOKEN_FILE"] = file("token", text);
    auto s = load();
    ASSERT_FALSE(s) << text;
    EXPECT_EQ(s.error().variable, "TRADING_HEAL_API_TOKEN_FILE");
    EXPECT_NE(s.error().message.find(why), std::string::npos) << s.error().message;
  }
  env_["TRADING_HEAL_API_TOKEN_FILE"] = (dir_ / "absent").string();
  EXPECT_FALSE(load());
}

TEST_F(Startup, TheUnitsCredentialWinsOverTheTokenFile) {
  env_["TRADING_HEAL_API_TOKEN_FILE"] = file("token", "from-the-file");
  std::ofstream(dir_ / "creds" / "api-token") << "from-the-credential\n";
  auto s = load((dir_ / "creds").c_str());
  ASSERT_TRUE(s) << s.error().to_string();
  EXPECT_EQ(s->token, "from-the-credential");
  EXPECT_EQ(s->cfg.api_token_file, (dir_ / "creds" / "api-token").string());
  fs::remove(dir_ / "creds" / "api-token");
  EXPECT_EQ(load((dir_ / "creds").c_str())->token, "from-the-file") << "no credential: the file";
}

}  // namespace
