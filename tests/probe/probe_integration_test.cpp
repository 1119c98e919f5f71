// trading-heal-probe on the real testbed: real PostgreSQL, systemd user manager, simulated
// agents. Each test starts its own probe (interval 1 s, threshold 10 s unless said otherwise)
// and listens to its health PUB socket.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "support/bed.hpp"
#include "support/process.hpp"
#include "support/wait.hpp"
#include "trading_heal/common/zmq.hpp"
#include "trading_heal/proto/codec.hpp"

namespace {

using namespace std::chrono_literals;
using trading_heal::proto::HealthReport;
using trading_heal::proto::Verdict;
using trading_heal::test::Bed;
using trading_heal::test::Child;
using trading_heal::test::wait_until;
using Clock = std::chrono::steady_clock;

const std::vector<std::string> kFleet = {"BTC_USDT", "ETH_USDT",  "XRP_USDT",
                                         "SOL_USDT", "DOGE_USDT", "ADA_USDT"};

std::string bed_sh(const std::string& args) {
  return "'" + Bed::source_dir() + "/tests/bed/bed.sh' " + args + " >/dev/null 2>&1";
}

std::string unit(const std::string& inst) { return "crypto-agent@" + inst + ".service"; }

long main_pid(const std::string& inst) {
  const std::string v = Bed::sh_out("systemctl --user show -p MainPID --value " + unit(inst));
  return v.empty() ? 0 : std::stol(v);
}

struct Seen {
  HealthReport report;
  Clock::time_point at;
};

// A running probe and a subscriber to its health endpoint.
class Probe {
 public:
  using Env = std::map<std::string, std::string>;
  explicit Probe(const Env& extra = Env{}) {
    dir_ = std::filesystem::temp_directory_path() /
           ("probe-it-" + std::to_string(::getpid()) + "-" + std::to_string(++count_));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ / "data");
    std::map<std::string, std::string> env = Bed::env();
    env["TRADING_HEAL_RUNTIME_DIR"] = (dir_ / "run").string();
    env["TRADING_HEAL_DATA_DIR"] = (dir_ / "data").string();
    env["TRADING_HEAL_INTERVAL"] = "1";
    env["TRADING_HEAL_STALL_THRESHOLD"] = "10";
    env["TRADING_HEAL_LOG_LEVEL"] = "info";
    for (auto& [k, v] : extra) env[k] = v;
    endpoint_ = "ipc://" + (dir_ / "run" / "probe" / "health.sock").string();
    child_.emplace(Child::spawn({Bed::bin("trading-heal-probe")}, env));
    sub_.set(zmq::sockopt::subscribe, "");
    sub_.set(zmq::sockopt::linger, 0);
    sub_.connect(endpoint_);
  }
  ~Probe() {
    if (child_ && child_->running()) {
      child_->signal(SIGTERM);
      child_->wait(5s);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Reads everything available within `budget`.
  void pump(std::chrono::milliseconds budget = 100ms) {
    zmq::pollitem_t item{sub_.handle(), 0, ZMQ_POLLIN, 0};
    const auto end = Clock::now() + budget;
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
      if (left <= 0ms) return;
      zmq::poll(&item, 1, left);
      zmq::message_t m;
      while (sub_.recv(m, zmq::recv_flags::dontwait)) {
        auto msg = trading_heal::proto::decode(m.to_string_view());
        if (!msg) continue;
        if (auto* r = std::get_if<HealthReport>(&msg->body)) {
          latest_[r->agent] = Seen{*r, Clock::now()};
          history_.push_back(Seen{*r, Clock::now()});
        } else if (auto* h = std::get_if<trading_heal::proto::Heartbeat>(&msg->body)) {
          stats_ = h->stats;
        }
      }
    }
  }
  // Waits until `pred` holds for the latest report of `agent`.
  bool wait_for(const std::string& agent, const std::function<bool(const HealthReport&)>& pred,
                std::chrono::milliseconds timeout) {
    return wait_until(
        [&] {
          pump(50ms);
          auto it = latest_.find(agent);
          return it != latest_.end() && pred(it->second.report);
        },
        timeout, 1ms);
  }
  bool wait_verdict(const std::string& agent, Verdict v, std::chrono::milliseconds timeout) {
    return wait_for(
        agent, [v](const HealthReport& r) { return r.verdict == v; }, timeout);
  }
  const HealthReport& latest(const std::string& agent) { return latest_.at(agent).report; }
  std::vector<Seen>& history() { return history_; }
  const trading_heal::proto::Fields& stats() const { return stats_; }
  std::filesystem::path dir() const { return dir_; }
  Child& child() { return *child_; }

 private:
  static inline int count_ = 0;
  std::filesystem::path dir_;
  std::string endpoint_;
  std::optional<Child> child_;
  zmq::context_t ctx_{1};
  zmq::socket_t sub_{ctx_, zmq::socket_type::sub};
  std::map<std::string, Seen> latest_;
  std::vector<Seen> history_;
  trading_heal::proto::Fields stats_;
};

class ProbeOnBed : public ::testing::Test {
 protected:
  void SetUp() override { Bed::export_env(); }
};

TEST_F(ProbeOnBed, HealthyFleetGivesSixHealthyReportsACycle) {
  Probe p;
  for (const auto& a : kFleet) {
    ASSERT_TRUE(p.wait_verdict(a, Verdict::kHealthy, 10s)) << a;
  }
  // One report per agent per cycle: over ~3 cycles, each agent reported about 3 times.
  p.history().clear();
  p.pump(3000ms);
  std::map<std::string, int> n;
  for (const auto& s : p.history()) {
    ++n[s.report.agent];
    EXPECT_EQ(s.report.verdict, Verdict::kHealthy) << s.report.agent << ": " << s.report.detail;
    EXPECT_EQ(s.report.age_source, trading_heal::proto::AgeSource::kDb);
    EXPECT_GT(s.report.main_pid, 0u);
    EXPECT_GT(s.report.rss_bytes, 0u);
    ASSERT_TRUE(s.report.decision_age_seconds);
    EXPECT_LT(*s.report.decision_age_seconds, 5.0);
  }
  ASSERT_EQ(n.size(), kFleet.size());
  for (const auto& [a, k] : n) EXPECT_TRUE(k >= 2 && k <= 4) << a << " reported " << k;
  ASSERT_TRUE(p.stats().count("db_reachable"));
  EXPECT_EQ(std::get<bool>(p.stats().at("db_reachable")), true);
  EXPECT_EQ(std::get<std::int64_t>(p.stats().at("agents")), 6);
  EXPECT_LT(std::get<double>(p.stats().at("cycle_seconds")), 0.5);
}

TEST_F(ProbeOnBed, StallGoesStalledAfterTheThreshold) {
  Probe p;
  ASSERT_TRUE(p.wait_verdict("BTC_USDT", Verdict::kHealthy, 10s));
  ASSERT_EQ(Bed::sh(bed_sh("fault BTC_USDT stall")), 0);
  const auto t0 = Clock::now();
  ASSERT_TRUE(p.wait_verdict("BTC_USDT", Verdict::kStalled, 20s));
  const double waited = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_GT(waited, 8.0);  // not before the age passed 10 s
  const auto r = p.latest("BTC_USDT");
  ASSERT_TRUE(r.decision_age_seconds);
  EXPECT_GT(*r.decision_age_seconds, 10.0);
  EXPECT_TRUE(r.unit_ok && r.process_ok && !r.age_ok);
  EXPECT_GE(r.consecutive_failures, 1u);
  ASSERT_TRUE(p.wait_for(
      "BTC_USDT", [](auto& x) { return x.consecutive_failures >= 2; }, 5s));
  EXPECT_EQ(p.latest("ETH_USDT").verdict, Verdict::kHealthy);  // the others are fine
  ASSERT_EQ(Bed::sh(bed_sh("fault BTC_USDT ok")), 0);
  ASSERT_TRUE(p.wait_verdict("BTC_USDT", Verdict::kHealthy, 10s));
  EXPECT_EQ(p.latest("BTC_USDT").consecutive_failures, 0u);
}

TEST_F(ProbeOnBed, KilledAgentIsDownWithinOneSecond) {
  ASSERT_EQ(Bed::sh(bed_sh("restart-policy ETH_USDT no")), 0);
  {
    Probe p;
    ASSERT_TRUE(p.wait_verdict("ETH_USDT", Verdict::kHealthy, 10s));
    const long pid = main_pid("ETH_USDT");
    ASSERT_GT(pid, 0);
    p.pump(300ms);  // land between two cycles, so only the instant path can be this fast
    const auto t0 = Clock::now();
    ASSERT_EQ(::kill(static_cast<pid_t>(pid), SIGKILL), 0);
    ASSERT_TRUE(p.wait_verdict("ETH_USDT", Verdict::kDown, 3s));
    const double latency = std::chrono::duration<double>(Clock::now() - t0).count();
    std::cerr << "kill -9 -> DOWN report in " << latency * 1000 << " ms\n";
    EXPECT_LT(latency, 1.0);
    EXPECT_EQ(p.latest("ETH_USDT").active_state, "failed");
    EXPECT_GE(p.latest("ETH_USDT").consecutive_failures, 1u);
  }
  ASSERT_EQ(Bed::sh(bed_sh("restart-policy ETH_USDT always")), 0);
  ASSERT_EQ(Bed::sh("systemctl --user reset-failed " + unit("ETH_USDT") +
                    " && systemctl --user start " + unit("ETH_USDT")),
            0);
}

TEST_F(ProbeOnBed, OperatorStopIsStopped) {
  Probe p;
  ASSERT_TRUE(p.wait_verdict("XRP_USDT", Verdict::kHealthy, 10s));
  ASSERT_EQ(Bed::sh("systemctl --user stop " + unit("XRP_USDT")), 0);
  ASSERT_TRUE(p.wait_verdict("XRP_USDT", Verdict::kStopped, 3s));
  EXPECT_EQ(p.latest("XRP_USDT").consecutive_failures, 0u);
  p.pump(2000ms);  // stays STOPPED, never DOWN
  for (const auto& s : p.history()) {
    if (s.report.agent == "XRP_USDT") {
      EXPECT_NE(s.report.verdict, Verdict::kDown);
    }
  }
  ASSERT_EQ(Bed::sh("systemctl --user start " + unit("XRP_USDT")), 0);
  ASSERT_TRUE(p.wait_verdict("XRP_USDT", Verdict::kHealthy, 10s));
}

TEST_F(ProbeOnBed, RestartedAgentIsNotStalledDuringItsBootstrap) {
  // Threshold 5 s: the last row is old (stalled), then a restart with a 30 s bootstrap, inside
  // the default 120 s startup grace.
  Probe p(Probe::Env{{"TRADING_HEAL_STALL_THRESHOLD", "5"}});
  ASSERT_TRUE(p.wait_verdict("SOL_USDT", Verdict::kHealthy, 10s));
  ASSERT_EQ(Bed::sh(bed_sh("fault SOL_USDT stall")), 0);
  ASSERT_TRUE(p.wait_verdict("SOL_USDT", Verdict::kStalled, 15s));
  const std::string boot = Bed::get("TRADING_HEAL_BED_CONTROL_DIR") + "/SOL_USDT.bootstrap";
  { std::ofstream(boot) << "30"; }
  ASSERT_EQ(Bed::sh("systemctl --user restart " + unit("SOL_USDT")), 0);
  ASSERT_TRUE(p.wait_verdict("SOL_USDT", Verdict::kHealthy, 5s));
  p.history().clear();
  p.pump(12000ms);  // more than twice the threshold, inside the bootstrap
  int reports = 0;
  double max_age = 0;
  for (const auto& s : p.history()) {
    if (s.report.agent != "SOL_USDT") continue;
    ++reports;
    EXPECT_EQ(s.report.verdict, Verdict::kHealthy) << s.report.detail;
    if (s.report.decision_age_seconds) max_age = std::max(max_age, *s.report.decision_age_seconds);
  }
  EXPECT_GE(reports, 10);
  EXPECT_GT(max_age, 15.0);  // the raw age is old: only the grace keeps it healthy
  std::filesystem::remove(boot);
  ASSERT_EQ(Bed::sh("systemctl --user restart " + unit("SOL_USDT")), 0);
  ASSERT_TRUE(p.wait_for(
      "SOL_USDT",
      [](auto& r) {
        return r.verdict == Verdict::kHealthy && r.decision_age_seconds &&
               *r.decision_age_seconds < 3;
      },
      15s));
}

TEST_F(ProbeOnBed, PostgresDownFallsBackToHeartbeatsAndReconnects) {
  Probe p;
  ASSERT_TRUE(p.wait_verdict("ADA_USDT", Verdict::kHealthy, 10s));
  ASSERT_EQ(Bed::sh(bed_sh("pg-stop")), 0);
  ASSERT_TRUE(p.wait_for(
      "DOGE_USDT",
      [](auto& r) { return r.age_source == trading_heal::proto::AgeSource::kHeartbeat; }, 5s));
  EXPECT_EQ(p.latest("DOGE_USDT").verdict, Verdict::kHealthy);
  ASSERT_EQ(Bed::sh(bed_sh("fault ADA_USDT hang")), 0);  // no rows, no heartbeat
  ASSERT_TRUE(p.wait_verdict("ADA_USDT", Verdict::kStalled, 20s));
  EXPECT_EQ(p.latest("ADA_USDT").age_source, trading_heal::proto::AgeSource::kHeartbeat);
  p.pump(500ms);
  EXPECT_EQ(std::get<bool>(p.stats().at("db_reachable")), false);
  for (const auto& a : {"BTC_USDT", "ETH_USDT", "XRP_USDT", "SOL_USDT", "DOGE_USDT"}) {
    EXPECT_EQ(p.latest(a).verdict, Verdict::kHealthy) << a << ": " << p.latest(a).detail;
  }
  ASSERT_EQ(Bed::sh(bed_sh("pg-start")), 0);
  ASSERT_TRUE(p.wait_for(
      "DOGE_USDT",
      [](auto& r) {
        return r.age_source == trading_heal::proto::AgeSource::kDb &&
               r.verdict == Verdict::kHealthy;
      },
      40s));
  p.pump(1500ms);
  EXPECT_EQ(std::get<bool>(p.stats().at("db_reachable")), true);
  ASSERT_EQ(Bed::sh(bed_sh("fault ADA_USDT ok")), 0);
  ASSERT_TRUE(p.wait_verdict("ADA_USDT", Verdict::kHealthy, 10s));
}

TEST_F(ProbeOnBed, HungPostgresNeverStallsTheCycle) {
  using trading_heal::proto::AgeSource;
  Probe p;
  ASSERT_TRUE(p.wait_for(
      "DOGE_USDT",
      [](auto& r) { return r.age_source == AgeSource::kDb && r.verdict == Verdict::kHealthy; },
      15s));
  // Hung, not down: the server accepts nothing and answers nothing (SIGSTOP).
  struct Thaw {
    ~Thaw() { Bed::sh(bed_sh("pg-thaw")); }
  } thaw;
  ASSERT_EQ(Bed::sh(bed_sh("pg-freeze")), 0);
  const auto frozen = Clock::now();
  ASSERT_TRUE(p.wait_for(
      "DOGE_USDT", [](auto& r) { return r.age_source == AgeSource::kHeartbeat; }, 15s))
      << "the probe never fell back to the heartbeats";
  const double fallback_s = std::chrono::duration<double>(Clock::now() - frozen).count();
  // The cycle goes on at its interval: ten more reports of DOGE_USDT, none late.
  const std::size_t from = p.history().size();
  auto doge_reports = [&] {
    std::vector<Clock::time_point> at;
    for (std::size_t i = from; i < p.history().size(); ++i) {
      if (p.history()[i].report.agent == "DOGE_USDT") at.push_back(p.history()[i].at);
    }
    return at;
  };
  ASSERT_TRUE(wait_until(
      [&] {
        p.pump(50ms);
        return doge_reports().size() >= 10;
      },
      20s, 1ms));
  const auto at = doge_reports();
  double max_gap = 0;
  for (std::size_t i = 1; i < at.size(); ++i) {
    max_gap = std::max(max_gap, std::chrono::duration<double>(at[i] - at[i - 1]).count());
  }
  // A cycle waits for the query at most its deadline (statement_timeout 500 ms + margin).
  EXPECT_LT(max_gap, 2.0) << "a cycle waited on the hung database (interval 1 s)";
  // The verdict is the heartbeat's: the simulated agents block on the frozen database too, so
  // they may well be stalled by now; the point is that they are still judged, every cycle.
  EXPECT_EQ(p.latest("DOGE_USDT").age_source, AgeSource::kHeartbeat);
  p.pump(1500ms);
  EXPECT_EQ(std::get<bool>(p.stats().at("db_reachable")), false);
  std::cout << "hung PostgreSQL: heartbeat ages after " << fallback_s
            << " s; largest gap between two reports " << max_gap << " s\n";
  ASSERT_EQ(Bed::sh(bed_sh("pg-thaw")), 0);
  ASSERT_TRUE(p.wait_for(
      "DOGE_USDT",
      [](auto& r) { return r.age_source == AgeSource::kDb && r.verdict == Verdict::kHealthy; },
      40s))
      << "no reconnect after the thaw";
}

TEST_F(ProbeOnBed, NeverSeenSymbolIsAProbableMismatch) {
  Probe p(Probe::Env{{"TRADING_HEAL_AGENTS", "BTC_USDT,BTC_USDT_ghost"}});
  ASSERT_TRUE(p.wait_for(
      "BTC_USDT_ghost", [](auto& r) { return r.never_seen; }, 10s));
  EXPECT_FALSE(p.latest("BTC_USDT_ghost").unit_ok);  // no such unit either
  ASSERT_TRUE(p.wait_verdict("BTC_USDT", Verdict::kHealthy, 5s));
  EXPECT_FALSE(p.latest("BTC_USDT").never_seen);
  p.pump(1500ms);
  EXPECT_EQ(std::get<std::int64_t>(p.stats().at("config_mismatch")), 1);
  // The config_mismatch audit event waits in the outbox for the exporter.
  const auto outbox = p.dir() / "data" / "probe-outbox";
  ASSERT_TRUE(wait_until(
      [&] { return std::filesystem::exists(outbox) && std::filesystem::file_size(outbox) > 0; },
      5s));
  std::ifstream in(outbox, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(bytes.find("config_mismatch"), std::string::npos);
}

TEST_F(ProbeOnBed, BadConfigurationExits78AndOpensNoSocket) {
  const std::string rt = "/tmp/probe-it-badcfg-" + std::to_string(::getpid());
  for (const auto& [var, value] : std::vector<std::pair<std::string, std::string>>{
           {"TRADING_HEAL_AGENTS", "BTC USDT"},
           {"TRADING_HEAL_INTERVAL", "0"},
           {"TRADING_HEAL_SYSTEMD_SCOPE", "galaxy"},
           {"TRADING_HEAL_STARTUP_GRACE", "soon"},
           {"TRADING_HEAL_STALL_THRESHOLD", "learn"},
           {"TRADING_HEAL_STALL_THRESHOLD_MIN", "7200"}}) {
    int rc = -1;
    const std::string out =
        Bed::sh_out("env TRADING_HEAL_RUNTIME_DIR=" + rt + " " + var + "='" + value + "' '" +
                        Bed::bin("trading-heal-probe") + "' 2>&1",
                    &rc);
    EXPECT_EQ(rc, 78) << out;
    EXPECT_NE(out.find("configuration error: " + var + "=" + value), std::string::npos) << out;
    EXPECT_FALSE(std::filesystem::exists(rt)) << "a socket directory was created";
  }
  std::filesystem::remove_all(rt);
}

// TRADING_HEAL_STALL_THRESHOLD=auto on the bed: ETH-USDT gets a history of 3000 decisions 1 s
// apart and one 25 h before (enough: 1000 gaps over a day), so it learns max(MIN 8 s, 3 x about
// 1 s); every other agent has minutes of history and keeps the fixed 600 s. A stall of ETH is then
// STALLED after its learned seconds, long before the fixed threshold, and the exporter exports it.
TEST_F(ProbeOnBed, AutoThresholdLearnedFromHistoryCatchesAStallBeforeTheFixedOne) {
  using trading_heal::proto::ThresholdSource;
  const std::string seed =
      "INSERT INTO btc.decisions (\"timestamp\", symbol, profile, action, servidor) "
      "SELECT extract(epoch FROM now()) - 90000, 'ETH-USDT', 'default', 'HOLD', 'seed-auto' "
      "UNION ALL SELECT extract(epoch FROM now()) - 7200 + g, 'ETH-USDT', 'default', 'HOLD', "
      "'seed-auto' FROM generate_series(0, 2999) g";
  const std::string unseed = "DELETE FROM btc.decisions WHERE servidor = 'seed-auto'";
  auto psql = [](const std::string& sql) {
    return Bed::sh("psql -X -q -v ON_ERROR_STOP=1 \"$SUPER_DATABASE_URL\" -c \"" + sql + "\"");
  };
  ASSERT_EQ(psql(unseed), 0);
  ASSERT_EQ(psql(seed), 0);
  const int metrics_port = 29320;
  Probe p({{"TRADING_HEAL_STALL_THRESHOLD", "auto"}, {"TRADING_HEAL_STALL_THRESHOLD_MIN", "8"}});
  // The exporter beside it, on the probe's sockets.
  auto env = Bed::env();
  env["TRADING_HEAL_RUNTIME_DIR"] = (p.dir() / "run").string();
  env["TRADING_HEAL_DATA_DIR"] = (p.dir() / "data").string();
  env["TRADING_HEAL_INTERVAL"] = "1";
  env["TRADING_HEAL_HOST"] = "bed";
  env["TRADING_HEAL_METRICS_LISTEN"] = "127.0.0.1:" + std::to_string(metrics_port);
  env["TRADING_HEAL_API_LISTEN"] = "127.0.0.1:" + std::to_string(metrics_port + 1);
  Child exporter = Child::spawn({Bed::bin("trading-heal-exporter")}, env);

  ASSERT_TRUE(p.wait_for(
      "ETH_USDT",
      [](auto& r) {
        return r.threshold_source == ThresholdSource::kLearned && r.verdict == Verdict::kHealthy;
      },
      30s))
      << "ETH_USDT did not learn its threshold";
  const HealthReport eth = p.latest("ETH_USDT");
  ASSERT_TRUE(eth.stall_threshold_seconds);
  const double learned = *eth.stall_threshold_seconds;
  std::cerr << "ETH_USDT learned a stall threshold of " << learned << " s\n";
  EXPECT_GE(learned, 8.0) << "MIN";
  EXPECT_LT(learned, 30.0) << "3 x its p99.9 gap of about a second";
  // ETH_USDT's learned report can come before any of BTC_USDT's: the learning may end within the
  // first cycle, whose reports this subscriber, joining as the probe starts, may have missed.
  ASSERT_TRUE(p.wait_for(
      "BTC_USDT", [](auto&) { return true; }, 10s));
  const HealthReport btc = p.latest("BTC_USDT");
  EXPECT_EQ(btc.threshold_source, ThresholdSource::kFixed) << "minutes of history";
  EXPECT_EQ(btc.stall_threshold_seconds, 600.0);
  // A heartbeat sent before the learning finished says 0: wait for the one after it.
  auto stat = [&](const char* name) {
    const auto& st = p.stats();
    auto it = st.find(name);
    if (it == st.end()) return -1.0;
    if (const auto* i = std::get_if<std::int64_t>(&it->second)) return static_cast<double>(*i);
    if (const auto* d = std::get_if<double>(&it->second)) return *d;
    return -1.0;
  };
  ASSERT_TRUE(wait_until(
      [&] {
        p.pump(50ms);
        return stat("thresholds_learned") >= 1;
      },
      5s));
  EXPECT_EQ(stat("thresholds_learned"), 1.0);
  std::cerr << "learning query " << stat("learn_query_seconds") * 1000
            << " ms, applied on the loop in " << stat("learn_apply_seconds") * 1e6 << " us\n";

  // The stall: STALLED once its age passes the learned threshold, far below the fixed 600 s.
  ASSERT_EQ(Bed::sh(bed_sh("fault ETH_USDT stall")), 0);
  const auto t0 = Clock::now();
  ASSERT_TRUE(p.wait_verdict("ETH_USDT", Verdict::kStalled, 60s));
  const double waited = std::chrono::duration<double>(Clock::now() - t0).count();
  const HealthReport stalled = p.latest("ETH_USDT");
  ASSERT_TRUE(stalled.decision_age_seconds);
  EXPECT_GT(*stalled.decision_age_seconds, learned);
  EXPECT_LT(*stalled.decision_age_seconds, 600.0);
  EXPECT_LT(waited, learned + 5);
  EXPECT_EQ(stalled.threshold_source, ThresholdSource::kLearned);
  EXPECT_EQ(stalled.stall_threshold_seconds, learned);
  EXPECT_EQ(p.latest("BTC_USDT").verdict, Verdict::kHealthy);

  // Exported: the learned threshold and the stall.
  const std::string series =
      "trading_agent_stall_threshold_seconds{host=\"bed\",symbol=\"ETH-USDT\"} ";
  std::string metrics;
  ASSERT_TRUE(wait_until(
      [&] {
        metrics = Bed::sh_out(
            "curl -fsS --max-time 2 http://127.0.0.1:" + std::to_string(metrics_port) + "/metrics");
        return metrics.find("trading_agent_stalled{host=\"bed\",symbol=\"ETH-USDT\"} 1") !=
               std::string::npos;
      },
      10s, 100ms))
      << metrics;
  const auto at = metrics.find(series);
  ASSERT_NE(at, std::string::npos) << metrics;
  EXPECT_DOUBLE_EQ(std::stod(metrics.substr(at + series.size())), learned);
  EXPECT_NE(
      metrics.find("trading_agent_stall_threshold_seconds{host=\"bed\",symbol=\"BTC-USDT\"} 600"),
      std::string::npos);

  ASSERT_EQ(Bed::sh(bed_sh("fault ETH_USDT ok")), 0);
  ASSERT_TRUE(p.wait_verdict("ETH_USDT", Verdict::kHealthy, 10s));
  exporter.signal(SIGTERM);
  exporter.wait(5s);
  EXPECT_EQ(psql(unseed), 0);
}

// Without a database to learn from, the fixed threshold stands and the probe goes on.
TEST_F(ProbeOnBed, AutoThresholdWithoutTheDatabaseKeepsTheFixedOne) {
  using trading_heal::proto::ThresholdSource;
  ASSERT_EQ(Bed::sh(bed_sh("pg-stop")), 0);
  {
    Probe p({{"TRADING_HEAL_STALL_THRESHOLD", "auto"}, {"TRADING_HEAL_STALL_THRESHOLD_MIN", "8"}});
    ASSERT_TRUE(wait_until(
        [&] {
          p.pump(50ms);
          return p.stats().count("learn_failures") > 0 &&
                 std::get<std::int64_t>(p.stats().at("learn_failures")) >= 1;
        },
        20s));
    ASSERT_TRUE(p.wait_verdict("ETH_USDT", Verdict::kHealthy, 10s));
    EXPECT_EQ(p.latest("ETH_USDT").threshold_source, ThresholdSource::kFixed);
    EXPECT_EQ(p.latest("ETH_USDT").stall_threshold_seconds, 600.0) << "600 within 8..3600";
    EXPECT_EQ(std::get<std::int64_t>(p.stats().at("thresholds_learned")), 0);
    EXPECT_TRUE(p.child().running());
  }
  ASSERT_EQ(Bed::sh(bed_sh("pg-start")), 0);
}

TEST_F(ProbeOnBed, OnceExitsZeroWhenAllHealthy) {
  int rc = -1;
  const std::string out = Bed::sh_out(
      "TRADING_HEAL_LOG_LEVEL=warning '" + Bed::bin("trading-heal-probe") + "' --once", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n') + 1, 6) << out;
  EXPECT_NE(out.find(R"("verdict":"HEALTHY")"), std::string::npos);
  ASSERT_EQ(Bed::sh(bed_sh("fault DOGE_USDT stall")), 0);
  ASSERT_TRUE(wait_until(
      [&] {
        Bed::sh_out("TRADING_HEAL_STALL_THRESHOLD=2 TRADING_HEAL_LOG_LEVEL=off '" +
                        Bed::bin("trading-heal-probe") + "' --once >/dev/null",
                    &rc);
        return rc == 1;
      },
      10s, 500ms));
  ASSERT_EQ(Bed::sh(bed_sh("fault DOGE_USDT ok")), 0);
}

}  // namespace
