// Status and health: per-agent state and silent components, with time passed in.
#include <gtest/gtest.h>

#include "trading_heal/exporter/metrics_model.hpp"
#include "trading_heal/exporter/status_model.hpp"

namespace trading_heal::exporter {
namespace {

using namespace std::chrono_literals;

std::vector<common::AgentSpec> fleet() {
  common::AgentSpec a;
  a.instance = "BTC_USDT";
  a.symbol = "BTC-USDT";
  a.profile = "default";
  a.unit = "crypto-agent@BTC_USDT.service";
  return {a};
}

TEST(StatusModel, HealthNamesSilentComponentsAfterThreeIntervals) {
  const common::MonoTime t0{std::chrono::hours(100)};
  StatusModel s(fleet(), 1s, t0);
  bool ok = false;
  EXPECT_EQ(s.health_json(t0 + 2s, &ok)["status"], "ok");  // grace after start
  EXPECT_TRUE(ok);
  auto h = s.health_json(t0 + 3100ms, &ok);
  EXPECT_FALSE(ok);
  EXPECT_EQ(h["silent"], (nlohmann::json{"actuator", "diagnoser", "probe"}));
  s.on_component("probe", 0, t0 + 3s);
  s.on_component("diagnoser", 0.5, t0 + 3s);  // says it speaks every 0.5 s
  s.on_component("actuator", 0, t0 + 3s);
  EXPECT_TRUE(s.silent_components(t0 + 4s).empty());
  EXPECT_EQ(s.silent_components(t0 + 4600ms), (std::vector<std::string>{"diagnoser"}));
  EXPECT_EQ(s.silent_components(t0 + 6100ms).size(), 3u);
  s.on_component("tap", 0, t0);  // not watched: ignored
  EXPECT_EQ(s.silent_components(t0 + 6100ms).size(), 3u);
}

TEST(StatusModel, StatusCombinesReportAndAgentState) {
  const common::MonoTime t0{std::chrono::hours(100)};
  StatusModel s(fleet(), 30s, t0);
  proto::HealthReport r;
  r.agent = "BTC_USDT";
  r.symbol = "BTC-USDT";
  r.verdict = proto::Verdict::kStalled;
  r.decision_age_seconds = 1500;
  r.unit_ok = r.process_ok = true;
  r.consecutive_failures = 3;
  r.stall_threshold_seconds = 45;
  r.threshold_source = proto::ThresholdSource::kLearned;
  s.on_health(r, 1784215211.0, t0);
  proto::Event st;
  st.action = "agent_state";
  st.agent = "BTC_USDT";
  st.fields["state"] = std::string("DIAGNOSING");
  st.fields["paused"] = false;
  st.fields["restarts_hour"] = std::int64_t{2};
  st.fields["last_restart_ts"] = 1784215000.0;
  st.fields["last_diagnosis"] = std::string("DB lock on decisions table");
  s.on_agent_state(st, 1784215211.0);
  proto::HealthReport other = r;
  other.agent = "NEW_USDT";
  s.on_health(other, 1784215211.0, t0);
  auto j = s.status_json(t0 + 1s, 1784215212.0);
  ASSERT_EQ(j["agents"].size(), 2u);
  const auto& a = j["agents"][0];
  EXPECT_EQ(a["agent"], "BTC_USDT");
  EXPECT_EQ(a["verdict"], "STALLED");
  EXPECT_EQ(a["up"], true);
  EXPECT_EQ(a["stalled"], true);
  EXPECT_EQ(a["decision_age_seconds"], 1500);
  EXPECT_EQ(a["consecutive_failures"], 3);
  EXPECT_EQ(a["stall_threshold_seconds"], 45);
  EXPECT_EQ(a["threshold_source"], "learned");
  EXPECT_EQ(a["incident_state"], "DIAGNOSING");
  EXPECT_EQ(a["restarts_hour"], 2);
  EXPECT_EQ(a["paused"], false);
  EXPECT_EQ(a["last_restart"], "2026-07-16T15:16:40.000Z");
  EXPECT_EQ(a["last_diagnosis"], "DB lock on decisions table");
  EXPECT_DOUBLE_EQ(a["report_age_seconds"].get<double>(), 1.0);
  EXPECT_EQ(j["agents"][1]["agent"], "NEW_USDT");
  other.stall_threshold_seconds.reset();  // a probe from before thresholds were reported
  s.on_health(other, 1784215212.0, t0);
  const auto older = s.status_json(t0 + 1s, 1784215212.0)["agents"][1];
  EXPECT_TRUE(older["stall_threshold_seconds"].is_null());
  EXPECT_TRUE(older["threshold_source"].is_null());
  EXPECT_EQ(j["components"]["probe"]["up"], true);
  EXPECT_EQ(j["global_incident"], false);
}

// A crash loop systemd keeps fixing is an incident in /status: more than 3 restarts by systemd
// within 30 minutes, with the last result; NRestarts reset by a manual start loses nothing.
TEST(StatusModel, CrashLoopIsShownWithTheLastResult) {
  const common::MonoTime t0{std::chrono::hours(100)};
  StatusModel s(fleet(), 30s, t0);
  const double w0 = 1784215211.0;
  auto report = [&](std::uint32_t n, double at, const std::string& result = "exit-code") {
    proto::HealthReport r;
    r.agent = "BTC_USDT";
    r.symbol = "BTC-USDT";
    r.verdict = proto::Verdict::kHealthy;
    r.unit_ok = r.process_ok = true;
    r.n_restarts = n;
    r.result = result;
    s.on_health(r, w0 + at, t0);
  };
  auto loop = [&](double at) { return s.status_json(t0, w0 + at)["agents"][0]["crash_loop"]; };
  report(7, 0);  // restarts before we looked: no times, not counted
  EXPECT_TRUE(loop(0).is_null());
  report(8, 60);
  report(9, 300);
  report(1, 600);  // reset by a manual start, then one more
  EXPECT_TRUE(loop(600).is_null()) << "3 in 30 min is not a loop";
  report(2, 900, "signal");
  auto l = loop(900);
  ASSERT_TRUE(l.is_object());
  EXPECT_EQ(l["restarts_30m"], 4);
  EXPECT_EQ(l["last_result"], "signal");
  report(2, 1900);  // the first ones left the window
  EXPECT_TRUE(loop(1900).is_null());
}

// Many hosts: an agent of another host is its own (same instance name, other host); a host
// whose probe is silent (3 of its link's 2 s heartbeats) shows its agents UNKNOWN, not healthy.
TEST(StatusModel, AgentsOfAnotherHostAreTheirsAndUnknownWhenItIsSilent) {
  const common::MonoTime t0{std::chrono::hours(100)};
  StatusModel s(fleet(), 30s, t0, "centre");
  proto::HealthReport r;
  r.agent = "BTC_USDT";
  r.symbol = "BTC-USDT";
  r.verdict = proto::Verdict::kHealthy;
  r.unit_ok = r.process_ok = r.age_ok = true;
  proto::Heartbeat hb;
  hb.component = "probe";
  hb.interval_seconds = 2;
  s.on_component("alpha", "probe", hb.interval_seconds, t0);
  s.on_health(r, "alpha", 1784215211.0, t0);
  s.on_health(r, 1784215211.0, t0);  // the centre's own BTC_USDT
  auto j = s.status_json(t0 + 1s, 1784215212.0);
  ASSERT_EQ(j["agents"].size(), 2u);
  EXPECT_EQ(j["host"], "centre");
  EXPECT_EQ(j["agents"][0]["host"], "centre");
  EXPECT_EQ(j["agents"][1]["host"], "alpha");
  EXPECT_EQ(j["agents"][1]["verdict"], "HEALTHY");
  EXPECT_EQ(j["agents"][1]["host_up"], true);
  EXPECT_EQ(j["hosts"]["alpha"]["up"], true);

  // 6.1 s without a word from alpha: silent; its agent is not shown healthy.
  const auto later = t0 + 6100ms;
  EXPECT_EQ(s.hosts(later),
            (std::vector<std::pair<std::string, bool>>{{"alpha", false}, {"centre", true}}));
  j = s.status_json(later, 1784215218.0);
  EXPECT_EQ(j["agents"][1]["verdict"], "UNKNOWN");
  EXPECT_EQ(j["agents"][1]["host_up"], false);
  EXPECT_TRUE(j["agents"][1]["up"].is_null());
  EXPECT_EQ(j["agents"][0]["verdict"], "HEALTHY") << "the centre's own agent stays";
  EXPECT_EQ(j["hosts"]["alpha"]["up"], false);
  const auto silent = s.silent_components(later);
  EXPECT_NE(std::find(silent.begin(), silent.end(), "alpha/probe"), silent.end());

  s.on_component("alpha", "probe", 2, later);  // back
  EXPECT_EQ(s.status_json(later, 1784215218.0)["agents"][1]["host_up"], true);
}

// A centre without agents of its own waits for no local probe, diagnoser or actuator.
TEST(StatusModel, ACentreWithoutAgentsWaitsForNoLocalComponent) {
  const common::MonoTime t0{std::chrono::hours(100)};
  StatusModel s({}, 30s, t0, "centre");
  bool ok = false;
  (void)s.health_json(t0 + std::chrono::hours(1), &ok);
  EXPECT_TRUE(ok);
  s.on_component("alpha", "probe", 2, t0);
  EXPECT_EQ(s.silent_components(t0 + 7s), (std::vector<std::string>{"alpha/probe"}));
}

TEST(StatusModel, HostsAreBounded) {
  const common::MonoTime t0{std::chrono::hours(100)};
  StatusModel s({}, 30s, t0, "centre");
  for (std::size_t i = 0; i < kMaxHosts + 50; ++i) {
    s.on_component("h" + std::to_string(i), "probe", 2, t0);
  }
  EXPECT_EQ(s.hosts(t0).size(), kMaxHosts);
}

}  // namespace
}  // namespace trading_heal::exporter
