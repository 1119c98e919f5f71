// The centre's fleet-wide decisions: one canary host for agents failing on several hosts, the
// others held until it recovered (or for good when its restart did not help), the breaker over
// every host's restarts, and a silent canary host handing the role on.
#include "trading_heal/exporter/fleet_guard.hpp"

#include <gtest/gtest.h>

#include "trading_heal/proto/actions.hpp"

namespace {

using namespace std::chrono_literals;
using trading_heal::common::MonoTime;
using trading_heal::exporter::FleetGuard;
using trading_heal::exporter::FleetPolicy;
namespace proto = trading_heal::proto;
using V = proto::Verdict;

class Fleet : public ::testing::Test {
 protected:
  Fleet() : g_(policy()) {
    g_.on_host_name("alpha", "alpha.example");
    g_.on_host_name("beta", "beta.example");
  }
  static FleetPolicy policy() {
    FleetPolicy p;
    p.min_agents = 3;
    p.window = 60s;
    p.max_restarts = 4;
    return p;
  }
  std::vector<proto::Event> decide() { return g_.decide(now_, wall_, up_); }
  void later(std::chrono::seconds d) {
    now_ += d;
    wall_ += static_cast<double>(d.count());
  }
  void record(const std::string& host, const std::string& agent, proto::Action a) {
    proto::Event e;
    e.action = proto::name(a);
    e.agent = agent;
    g_.on_record(host, e, wall_, wall_);
  }
  static std::string stage(const proto::Event& e) {
    return std::get<std::string>(e.fields.at("stage"));
  }
  // Three agents failing: two on alpha (the first at t0), one on beta.
  void three_fail() {
    g_.on_health("alpha", "BTC", V::kStalled, now_);
    later(1s);
    g_.on_health("beta", "SOL", V::kDown, now_);
    g_.on_health("alpha", "ETH", V::kStalled, now_);
  }

  FleetGuard g_;
  MonoTime now_{std::chrono::hours(100)};
  double wall_ = 1.785e9;
  std::map<std::string, bool> up_{{"alpha", true}, {"beta", true}};
};

TEST_F(Fleet, NothingHoldsWhileAgentsFailOnOneHostOnly) {
  for (const char* a : {"BTC", "ETH", "XRP"}) g_.on_health("alpha", a, V::kStalled, now_);
  EXPECT_TRUE(decide().empty()) << "the host's own global incident deals with it";
  EXPECT_FALSE(g_.directive().hold);
  EXPECT_TRUE(g_.to_json().is_null());
}

TEST_F(Fleet, TwoAgentsOnTwoHostsAreBelowTheMinimum) {
  g_.on_health("alpha", "BTC", V::kStalled, now_);
  g_.on_health("beta", "SOL", V::kStalled, now_);
  EXPECT_TRUE(decide().empty());
  EXPECT_FALSE(g_.directive().hold);
}

TEST_F(Fleet, TheHostOfTheFirstFailureIsTheCanaryAndTheOthersHold) {
  three_fail();
  auto out = decide();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].action, "fleet_incident");
  EXPECT_EQ(stage(out[0]), "canary_testing");
  EXPECT_EQ(std::get<std::string>(out[0].fields.at("canary_host")), "alpha");
  EXPECT_EQ(std::get<std::string>(out[0].fields.at("agents")), "alpha/BTC,alpha/ETH,beta/SOL");
  const auto& d = g_.directive();
  EXPECT_TRUE(d.hold);
  EXPECT_EQ(d.canary_host, "alpha.example") << "the host's own name: its actuator compares it";
  EXPECT_EQ(d.cause, "agents");
  EXPECT_EQ(d.incident.rfind("fleet-", 0), 0u) << d.incident;
  EXPECT_TRUE(decide().empty()) << "audited once";
}

TEST_F(Fleet, AHostAlreadyRestartingIsTheCanaryNeverASecondOne) {
  g_.on_health("alpha", "BTC", V::kStalled, now_);
  later(1s);
  g_.on_health("beta", "SOL", V::kDown, now_);
  g_.on_health("beta", "ADA", V::kDown, now_);
  g_.on_agent_state("beta", "SOL", "RESTARTING");
  decide();
  EXPECT_EQ(g_.directive().canary_host, "beta.example");
}

TEST_F(Fleet, TheCanaryRecoveredAfterItsRestartReleasesTheOthers) {
  three_fail();
  decide();
  record("beta", "SOL", proto::Action::kRecovered);   // not the canary host: nothing
  record("alpha", "ETH", proto::Action::kRecovered);  // recovered without a restart: nothing
  EXPECT_TRUE(decide().empty());
  EXPECT_TRUE(g_.directive().hold);
  record("alpha", "BTC", proto::Action::kRestart);
  record("alpha", "BTC", proto::Action::kRecovered);
  g_.on_health("alpha", "BTC", V::kHealthy, now_);
  auto out = decide();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(stage(out[0]), "releasing");
  EXPECT_TRUE(out[0].success);
  EXPECT_FALSE(g_.directive().hold);
  EXPECT_EQ(g_.to_json()["stage"], "releasing");
  // Over once no member fails.
  g_.on_health("alpha", "ETH", V::kHealthy, now_);
  g_.on_health("beta", "SOL", V::kHealthy, now_);
  out = decide();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(stage(out[0]), "closed");
  EXPECT_TRUE(g_.to_json().is_null());
}

TEST_F(Fleet, ACanaryRestartThatDidNotHelpHoldsEveryHost) {
  three_fail();
  decide();
  record("alpha", "BTC", proto::Action::kRestart);
  record("alpha", "BTC", proto::Action::kRestartIneffective);
  auto out = decide();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(stage(out[0]), "held");
  const auto& d = g_.directive();
  EXPECT_TRUE(d.hold);
  EXPECT_TRUE(d.canary_host.empty()) << "no host may restart";
  EXPECT_NE(d.reason.find("restart_ineffective of BTC"), std::string::npos) << d.reason;
  // Recoveries do not release a held incident; it ends when nothing fails.
  record("alpha", "BTC", proto::Action::kRecovered);
  decide();
  EXPECT_TRUE(g_.directive().hold);
  for (auto [h, a] : {std::pair{"alpha", "BTC"}, {"alpha", "ETH"}, {"beta", "SOL"}}) {
    g_.on_health(h, a, V::kHealthy, now_);
  }
  out = decide();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(stage(out[0]), "closed");
  EXPECT_FALSE(g_.directive().hold);
}

TEST_F(Fleet, ASilentCanaryHostHandsTheRoleOn) {
  three_fail();
  decide();
  ASSERT_EQ(g_.directive().canary_host, "alpha.example");
  up_["alpha"] = false;
  auto out = decide();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(stage(out[0]), "canary_testing");
  EXPECT_NE(out[0].reason.find("alpha is not heard from"), std::string::npos) << out[0].reason;
  EXPECT_EQ(g_.directive().canary_host, "beta.example");
  // Once nothing fails on a host heard from, it is over (alpha's agents are not counted).
  g_.on_health("beta", "SOL", V::kHealthy, now_);
  out = decide();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(stage(out[0]), "closed");
}

TEST_F(Fleet, TheBreakerCountsEveryHostsRestartsWithinTheHour) {
  record("alpha", "BTC", proto::Action::kRestart);
  record("alpha", "ETH", proto::Action::kRestart);
  record("beta", "SOL", proto::Action::kRestart);
  EXPECT_TRUE(decide().empty());
  EXPECT_FALSE(g_.directive().hold) << "3 of 4";
  // A restart from over an hour ago (a host's outbox emptied late) does not count.
  proto::Event old;
  old.action = "restart";
  old.agent = "ADA";
  g_.on_record("beta", old, wall_ - 3700, wall_);
  EXPECT_TRUE(decide().empty());
  later(600s);
  record("beta", "ADA", proto::Action::kRestart);
  auto out = decide();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(stage(out[0]), "breaker_open");
  const auto& d = g_.directive();
  EXPECT_TRUE(d.hold);
  EXPECT_TRUE(d.canary_host.empty());
  EXPECT_EQ(d.cause, "fleet_max_restarts");
  EXPECT_NE(d.reason.find("4 restarts on 2 hosts"), std::string::npos) << d.reason;
  // The first three leave the hour 3000 s later: closed.
  later(2999s);
  EXPECT_TRUE(decide().empty());
  later(1s);
  out = decide();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(stage(out[0]), "breaker_closed");
  EXPECT_FALSE(g_.directive().hold);
}

TEST_F(Fleet, LateRecordsKeepTheWindowInTimeOrder) {
  record("alpha", "BTC", proto::Action::kRestart);
  proto::Event late;
  late.action = "restart";
  late.agent = "SOL";
  g_.on_record("beta", late, wall_ - 3000, wall_);  // older than the one before
  later(120s);
  decide();
  // The late one leaves the window first; the other one stays: 1 < 4 either way, but the
  // front must be the oldest for pruning to be right.
  EXPECT_FALSE(g_.directive().hold);
  for (int i = 0; i < 2; ++i) record("alpha", "ETH", proto::Action::kRestart);
  decide();
  EXPECT_TRUE(g_.directive().hold) << "4 within the hour";
  later(481s);  // 601 s after the first: the late one (3000 s before it) has left the hour
  decide();
  EXPECT_FALSE(g_.directive().hold);
}

// Its probe calls a restarted agent healthy while it starts: the canary host keeps the role while
// its actuator restarts it or watches its recovery.
TEST_F(Fleet, TheCanaryHostKeepsTheRoleWhileItsRestartIsInHand) {
  three_fail();
  decide();
  ASSERT_EQ(g_.directive().canary_host, "alpha.example");
  record("alpha", "BTC", proto::Action::kRestart);
  for (const char* a : {"BTC", "ETH"}) {
    g_.on_agent_state("alpha", a, "RECOVERING");
    g_.on_health("alpha", a, V::kHealthy, now_);  // bootstrapping
  }
  EXPECT_TRUE(decide().empty());
  EXPECT_EQ(g_.directive().canary_host, "alpha.example");
  g_.on_agent_state("alpha", "ETH", "HEALTHY");
  g_.on_agent_state("alpha", "BTC", "HEALTHY");  // and no `recovered`: it moves on
  auto out = decide();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(g_.directive().canary_host, "beta.example");
}

}  // namespace
