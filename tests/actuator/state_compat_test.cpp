// The state file stays loadable across versions of the actuator: fixtures/state_v1.json was
// written by the engine before its incident machine became a table (main at 3299a9a), with a
// restart in flight, a backoff, a pause with expiry, a stopped and a failing agent.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "support/bed.hpp"
#include "trading_heal/actuator/engine.hpp"

namespace trading_heal::actuator {
namespace {

using namespace std::chrono_literals;

nlohmann::json fixture() {
  std::ifstream in(test::Bed::source_dir() + "/tests/actuator/fixtures/state_v1.json");
  std::stringstream s;
  s << in.rdbuf();
  return nlohmann::json::parse(s.str());
}

class StateCompatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::map<std::string, std::string> env = {
        {"TRADING_HEAL_AGENTS", "BTC_USDT,ETH_USDT,XRP_USDT,SOL_USDT,DOGE_USDT,ADA_USDT"},
        {"TRADING_HEAL_INTERVAL", "30"},
        {"TRADING_HEAL_DIAGNOSIS_WAIT", "0"},
        {"TRADING_HEAL_RECOVERY_GRACE", "120"},
        {"TRADING_HEAL_GLOBAL_MIN_AGENTS", "10"}};
    auto c = common::load_config([&](const std::string& k) -> std::optional<std::string> {
      auto it = env.find(k);
      if (it == env.end()) return std::nullopt;
      return it->second;
    });
    ASSERT_TRUE(c.has_value());
    cfg_ = *c;
    engine_ = std::make_unique<Engine>(cfg_.agents, Policy::from_config(cfg_));
  }
  // The fixture was saved at wall time 1785000600; this process's monotonic clock differs.
  static Now at(std::chrono::milliseconds d) {
    return Now{MonoTime(std::chrono::hours(7)) + d,
               common::WallTime(std::chrono::seconds(1785000600)) + d};
  }

  common::Config cfg_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(StateCompatTest, AFileOfThePreviousEngineLoadsAsItWasMeant) {
  const auto saved = fixture();
  ASSERT_TRUE(engine_->load_json(saved, at(0s)));
  const auto* btc = engine_->agent("BTC_USDT");
  EXPECT_EQ(btc->phase, Phase::kHealthy);
  EXPECT_EQ(btc->backoff_level, 1);
  EXPECT_EQ(btc->last_diagnosis, "DB lock on decisions table");
  EXPECT_EQ(engine_->restarts_in_window(*btc, at(0s).mono), 1);
  const auto* eth = engine_->agent("ETH_USDT");
  EXPECT_TRUE(eth->paused);
  EXPECT_EQ(eth->pause_reason, "exchange maintenance");
  EXPECT_EQ(eth->pause_until, common::WallTime(std::chrono::seconds(1785007200)));
  EXPECT_EQ(engine_->agent("SOL_USDT")->phase, Phase::kFailing);
  EXPECT_EQ(engine_->agent("DOGE_USDT")->phase, Phase::kStopped);
  // The restart in flight is watched for recovery; the rest is saved again as it was read.
  EXPECT_EQ(engine_->agent("XRP_USDT")->phase, Phase::kRecovering);
  EXPECT_EQ(engine_->next_deadline(at(0s)), at(120s).mono) << "its recovery grace";
  auto again = engine_->to_json(at(0s));
  EXPECT_EQ(again["agents"]["XRP_USDT"]["phase"], "RECOVERING");
  again["agents"]["XRP_USDT"]["phase"] = "RESTARTING";
  EXPECT_EQ(again, saved);
}

TEST_F(StateCompatTest, ARestartInFlightThatNeverHappenedIsMadeAgain) {
  ASSERT_TRUE(engine_->load_json(fixture(), at(0s)));
  proto::HealthReport r;
  r.agent = "XRP_USDT";
  r.verdict = proto::Verdict::kDown;
  r.consecutive_failures = 5;
  r.main_pid = 4242;  // the MainPID before that restart
  r.active_state = "failed";
  auto ds = engine_->on_health(r, at(10s));
  ASSERT_EQ(ds.size(), 2U);
  EXPECT_EQ(std::get<proto::Event>(ds[0]).action, "restart_interrupted");
  EXPECT_EQ(std::get<RestartDecision>(ds[1]).old_pid, 4242U);
}

// Files from before `last_diagnosis` and `restart_old_pid` existed.
TEST_F(StateCompatTest, OlderFilesWithoutTheLaterFieldsLoad) {
  auto saved = fixture();
  for (auto& [name, a] : saved["agents"].items()) {
    a.erase("last_diagnosis");
    a.erase("restart_old_pid");
  }
  saved["agents"]["BTC_USDT"]["diagnosis"] = "API timeout";
  ASSERT_TRUE(engine_->load_json(saved, at(0s)));
  EXPECT_EQ(engine_->agent("BTC_USDT")->last_diagnosis, "API timeout");
  EXPECT_EQ(engine_->agent("XRP_USDT")->restart_old_pid, 0U);
  EXPECT_EQ(engine_->agent("XRP_USDT")->phase, Phase::kRecovering);
  EXPECT_EQ(engine_->next_deadline(at(0s)), at(120s).mono) << "its recovery grace";
}

}  // namespace
}  // namespace trading_heal::actuator
