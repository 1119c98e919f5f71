// trading-heal-tap against a test publisher on a real ipc socket.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "support/bed.hpp"
#include "support/process.hpp"
#include "support/wait.hpp"
#include "trading_heal/common/zmq.hpp"

namespace trading_heal {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class Tap : public ::testing::Test {
 protected:
  fs::path dir_ = fs::path(::testing::TempDir()) / ("th-tap-" + common::random_boot_id());
  void TearDown() override { fs::remove_all(dir_); }
  std::map<std::string, std::string> env() const {
    return {{"TRADING_HEAL_RUNTIME_DIR", dir_.string()}};
  }
};

TEST_F(Tap, PrintsAPublishedMessageAsJsonAndStopsAfterCount) {
  zmq::context_t ctx;
  auto pub = common::make_socket(ctx, zmq::socket_type::pub);
  ASSERT_TRUE(common::bind_endpoint(pub, "ipc://" + (dir_ / "probe" / "health.sock").string()));
  auto tap = test::Child::spawn(
      {test::Bed::bin("trading-heal-tap"), "--count", "1", "--agent", "ETH_USDT"}, env(), true);
  common::SystemClock clock;
  common::Stamper st("probe", clock);
  proto::HealthReport btc;
  btc.agent = "BTC_USDT";
  btc.verdict = proto::Verdict::kHealthy;
  proto::HealthReport eth = btc;
  eth.agent = "ETH_USDT";
  eth.verdict = proto::Verdict::kStalled;
  eth.decision_age_seconds = 1500;
  // PUB/SUB has no delivery before the subscription lands: publish until the tap prints.
  std::optional<std::string> line;
  for (int i = 0; i < 200 && !line; ++i) {
    pub.send(zmq::str_buffer("\xc1junk"), zmq::send_flags::dontwait);
    common::send_message(pub, st.stamp(btc));
    common::send_message(pub, st.stamp(eth));
    line = tap.read_line(50ms);
  }
  ASSERT_TRUE(line) << "tap printed nothing";
  auto j = nlohmann::json::parse(*line);
  EXPECT_EQ(j["kind"], "health");
  EXPECT_EQ(j["source"], "probe");
  EXPECT_EQ(j["agent"], "ETH_USDT");
  EXPECT_EQ(j["verdict"], "STALLED");
  EXPECT_EQ(j["decision_age_seconds"], 1500.0);
  EXPECT_EQ(j["boot_id"], st.boot_id());
  EXPECT_EQ(tap.wait(5s), 0);
  EXPECT_FALSE(tap.read_line(10ms)) << "printed more than --count";
}

TEST_F(Tap, ExitsCleanlyOnSigint) {
  auto tap = test::Child::spawn({test::Bed::bin("trading-heal-tap")}, env(), true);
  ASSERT_TRUE(tap.running());
  // Wait until it reads signals through its signalfd (SIGINT blocked in /proc/PID/status).
  ASSERT_TRUE(test::wait_until(
      [&] {
        std::ifstream in("/proc/" + std::to_string(tap.pid()) + "/status");
        std::string line;
        while (std::getline(in, line)) {
          if (line.rfind("SigBlk:", 0) == 0) {
            return (std::stoull(line.substr(7), nullptr, 16) & (1ULL << (SIGINT - 1))) != 0;
          }
        }
        return false;
      },
      5s));
  tap.signal(SIGINT);
  EXPECT_EQ(tap.wait(5s), 0);
}

TEST_F(Tap, BadConfigurationAndUsage) {
  auto bad = test::Child::spawn({test::Bed::bin("trading-heal-tap")},
                                {{"TRADING_HEAL_HEALTH_ENDPOINT", "ipc://@x"}});
  EXPECT_EQ(bad.wait(5s), 78);
  auto usage = test::Child::spawn({test::Bed::bin("trading-heal-tap"), "--count", "zero"});
  EXPECT_EQ(usage.wait(5s), 64);
  auto help = test::Child::spawn({test::Bed::bin("trading-heal-tap"), "--help"}, {}, true);
  EXPECT_EQ(help.wait(5s), 0);
  EXPECT_NE(help.output().find("--count"), std::string::npos);
}

}  // namespace
}  // namespace trading_heal
