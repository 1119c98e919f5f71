// Unit tests of the probe's other pure pieces: /proc parsing, CPU ratio, heartbeat text, the
// fleet query's parameters, the cycle schedule.
#include <gtest/gtest.h>

#include "support/bed.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "trading_heal/probe/fleet_query.hpp"
#include "trading_heal/probe/heartbeat.hpp"
#include "trading_heal/probe/pg_store.hpp"
#include "trading_heal/probe/prober.hpp"
#include "trading_heal/probe/proc.hpp"
#include "trading_heal/probe/schedule.hpp"

namespace {

using namespace trading_heal;
using namespace std::chrono_literals;

// A real /proc/PID/stat line with a comm holding a space and a parenthesis.
constexpr const char* kStat =
    "4242 (trading agent) S 1 4242 4242 0 -1 4194560 1234 0 0 0 150 50 0 0 20 0 3 0 987654 "
    "123456789 12800 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";

// The reconnect backoff runs on the store's clock: within it nothing is tried, after it the next
// query connects again, and the wait doubles (a refused loopback port: no server needed).
TEST(PgStoreBackoff, FollowsTheStoresClock) {
  common::FakeClock clock;
  probe::PgSettings settings;
  settings.conninfo = "host=127.0.0.1 port=1 connect_timeout=2";
  settings.backoff_min = std::chrono::seconds(30);
  settings.backoff_max = std::chrono::seconds(60);
  probe::PgStore store(settings, clock);
  auto ask = [&]() -> std::string {
    if (!store.submit(probe::FleetPlan{})) return "not submitted";
    auto a = store.wait(std::chrono::steady_clock::now() + std::chrono::seconds(10));
    return a ? a->error : "no answer";
  };
  const auto connect_failed = [](const std::string& e) {
    return e.rfind("connect failed", 0) == 0;
  };
  EXPECT_PRED1(connect_failed, ask());
  EXPECT_EQ(ask(), "reconnect backoff");
  clock.advance(std::chrono::seconds(30));
  EXPECT_PRED1(connect_failed, ask());
  clock.advance(std::chrono::seconds(31));
  EXPECT_EQ(ask(), "reconnect backoff") << "the second wait is 60 s";
  clock.advance(std::chrono::seconds(29));
  EXPECT_PRED1(connect_failed, ask());
  EXPECT_FALSE(store.connected());
}

TEST(Proc, ParsesStat) {
  const auto st = probe::parse_proc_stat(kStat);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->state, 'S');
  EXPECT_EQ(st->cpu_ticks, 200u);
  EXPECT_EQ(st->start_ticks, 987654u);
  EXPECT_EQ(st->rss_pages, 12800u);
}

TEST(Proc, CommWithParenthesesAndZombie) {
  const auto st =
      probe::parse_proc_stat("7 (a) b) c) Z 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 55 0 0 0");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->state, 'Z');
  EXPECT_EQ(st->cpu_ticks, 7u);
}

TEST(Proc, RejectsGarbage) {
  EXPECT_FALSE(probe::parse_proc_stat(""));
  EXPECT_FALSE(probe::parse_proc_stat("1 (x) S 1 2 3"));
  EXPECT_FALSE(probe::parse_proc_stat("no parenthesis at all"));
}

TEST(Proc, CmdlineJoinAndPattern) {
  const std::string raw("/usr/bin/python3\0trading_agent.py\0BTC_USDT\0", 43);
  const auto cmd = probe::join_cmdline(raw);
  EXPECT_EQ(cmd, "/usr/bin/python3 trading_agent.py BTC_USDT");
  EXPECT_TRUE(probe::ProcessPattern("trading_agent.py.*BTC").matches(cmd));
  EXPECT_FALSE(probe::ProcessPattern("trading_agent.py.*ETH").matches(cmd));
  EXPECT_TRUE(probe::ProcessPattern("").matches("anything"));
}

TEST(Proc, CpuRatioFromDeltas) {
  probe::CpuTracker t(100);
  probe::ProcSample s{true, false, 0, 100, 55, ""};
  EXPECT_EQ(t.update("A", s, 10.0), 0.0);  // first sample
  s.cpu_ticks = 150;                       // 0.5 CPU s in 2 s
  EXPECT_NEAR(t.update("A", s, 12.0), 0.25, 1e-9);
  s.cpu_ticks = 151;  // too soon after (an instant re-check): the last ratio stays
  EXPECT_NEAR(t.update("A", s, 12.1), 0.25, 1e-9);
  s.start_ticks = 99;  // a new process (restart, PID reuse): starts over
  EXPECT_EQ(t.update("A", s, 14.0), 0.0);
}

TEST(Proc, ReaderOnFixtureRoot) {
  const std::string root = ::testing::TempDir() + "/proc-fixture";
  std::filesystem::create_directories(root + "/4242");
  { std::ofstream(root + "/4242/stat") << kStat; }
  { std::ofstream(root + "/4242/cmdline") << std::string("python3\0trading_agent.py\0X\0", 27); }
  probe::ProcReader r(root);
  auto s = r.read(4242, true);
  EXPECT_TRUE(s.exists);
  EXPECT_FALSE(s.zombie);
  EXPECT_EQ(s.rss_bytes, 12800u * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)));
  EXPECT_EQ(s.cmdline, "python3 trading_agent.py X");
  EXPECT_FALSE(r.read(4243, false).exists);
}

TEST(Heartbeat, Parses) {
  EXPECT_EQ(probe::parse_heartbeat("1785000000.25"), 1785000000.25);
  EXPECT_EQ(probe::parse_heartbeat(" 1785000000\n"), 1785000000.0);
  EXPECT_FALSE(probe::parse_heartbeat(""));
  EXPECT_FALSE(probe::parse_heartbeat("abc"));
  EXPECT_FALSE(probe::parse_heartbeat("12abc"));
  EXPECT_FALSE(probe::parse_heartbeat("nan"));
  EXPECT_FALSE(probe::parse_heartbeat("-5"));
}

namespace {

std::vector<common::AgentSpec> fleet_agents() {
  std::vector<common::AgentSpec> agents(4);
  agents[0] = {"BTC_USDT", "crypto-agent@BTC_USDT.service", "BTC-USDT", "default", "", "", true};
  agents[1] = {"BTC_USDT_x", "crypto-agent@BTC_USDT_x.service", "BTC-USDT", "x\"y", "", "", true};
  agents[2] = {"ETH_USDT", "crypto-agent@ETH_USDT.service", "ETH-USDT", "default", "", "", false};
  agents[3] = {"BTC_USDT2", "crypto-agent@BTC_USDT2.service", "BTC-USDT", "default", "", "", true};
  return agents;
}

probe::FleetPlannerSettings small_settings() {
  probe::FleetPlannerSettings s;
  s.cap = 1000;
  s.margin = 10;
  s.first_slice = 50;
  s.min_slice = 20;
  s.target_seconds = 0.01;
  return s;
}

probe::FleetRow row(std::optional<double> ts, std::optional<bool> exists = std::nullopt) {
  return probe::FleetRow{ts, exists};
}

}  // namespace

TEST(FleetPlanner, KeysAreSharedAndDisabledAgentsLeftOut) {
  const auto agents = fleet_agents();
  probe::FleetPlanner planner(agents, small_settings());
  ASSERT_EQ(planner.key_count(), 2u);
  EXPECT_EQ(planner.key_of(0), 0);
  EXPECT_EQ(planner.key_of(1), 1);
  EXPECT_EQ(planner.key_of(2), -1);
  EXPECT_EQ(planner.key_of(3), 0);
  EXPECT_EQ(planner.facts(2).db, probe::DbAnswer::kUnavailable);
}

TEST(FleetPlanner, FirstCycleScansRecentRowsAndChecksExistence) {
  probe::FleetPlanner planner(fleet_agents(), small_settings());
  const auto p = planner.plan(10000);
  EXPECT_DOUBLE_EQ(p.since, 10000 - 50);
  EXPECT_FALSE(p.slice);
  EXPECT_EQ(p.check, (std::vector<bool>{true, true}));
  EXPECT_FALSE(p.lateral[0] || p.lateral[1]);
  const auto params = probe::fleet_params(p);
  EXPECT_EQ(params.symbols, R"({"BTC-USDT","BTC-USDT"})");
  EXPECT_EQ(params.profiles, R"({"default","x\"y"})");
  EXPECT_EQ(params.since, "9950.000000");
  EXPECT_FALSE(params.slice_lo || params.slice_hi);
  EXPECT_EQ(params.check, "{t,t}");
  EXPECT_EQ(params.lateral, "{NULL,NULL}");
  // Not answered yet: the heartbeat tells.
  EXPECT_EQ(planner.facts(0).db, probe::DbAnswer::kUnavailable);
}

TEST(FleetPlanner, LaterCyclesScanOnlyRowsSinceTheLastAnsweredCycle) {
  probe::FleetPlanner planner(fleet_agents(), small_settings());
  auto p = planner.plan(10000);
  planner.apply(p, {row(9990, true), row(9980, true)}, 0.001);
  EXPECT_EQ(planner.facts(0).db, probe::DbAnswer::kRow);
  EXPECT_DOUBLE_EQ(planner.facts(0).newest_ts, 9990);
  EXPECT_DOUBLE_EQ(planner.facts(3).newest_ts, 9990);  // same key as agent 0
  EXPECT_DOUBLE_EQ(planner.facts(1).newest_ts, 9980);
  p = planner.plan(10005);
  EXPECT_DOUBLE_EQ(p.since, 10000 - 10);  // last answered cycle minus the margin
  EXPECT_FALSE(p.slice);                  // nothing to catch up
  EXPECT_EQ(p.check, (std::vector<bool>{false, false}));
  // A key with no newer row keeps its remembered newest timestamp: its age grows exactly.
  planner.apply(p, {row(10004), row(std::nullopt)}, 0.001);
  EXPECT_DOUBLE_EQ(planner.facts(0).newest_ts, 10004);
  EXPECT_EQ(planner.facts(1).db, probe::DbAnswer::kRow);
  EXPECT_DOUBLE_EQ(planner.facts(1).newest_ts, 9980);
  // Timestamps only grow: an older answer never replaces a newer one.
  p = planner.plan(10010);
  planner.apply(p, {row(10001), row(std::nullopt)}, 0.001);
  EXPECT_DOUBLE_EQ(planner.facts(0).newest_ts, 10004);
}

TEST(FleetPlanner, UnansweredCyclesWidenTheNextRange) {
  // A failed or lost answer is never applied: the next range starts from the last answered one,
  // so rows written while PostgreSQL was away are not missed.
  probe::FleetPlanner planner(fleet_agents(), small_settings());
  auto p = planner.plan(10000);
  planner.apply(p, {row(9990, true), row(9980, true)}, 0.001);
  (void)planner.plan(10005);  // submitted, never answered
  p = planner.plan(10600);
  EXPECT_DOUBLE_EQ(p.since, 10000 - 10);
  // A clock stepped back does not move the range into the future.
  p = planner.plan(9000);
  EXPECT_DOUBLE_EQ(p.since, 9000 - 10);
}

TEST(FleetPlanner, NeverSeenKeyIsFlaggedAtOnceAndRecoversWithItsFirstRow) {
  probe::FleetPlanner planner(fleet_agents(), small_settings());
  auto p = planner.plan(10000);
  planner.apply(p, {row(9990, true), row(std::nullopt, false)}, 0.001);
  EXPECT_EQ(planner.facts(1).db, probe::DbAnswer::kNeverSeen);
  p = planner.plan(10005);
  EXPECT_EQ(p.check, (std::vector<bool>{false, false}));  // asked once
  EXPECT_FALSE(p.slice);                                  // nothing to search below
  planner.apply(p, {row(std::nullopt), row(std::nullopt)}, 0.001);
  EXPECT_EQ(planner.facts(1).db, probe::DbAnswer::kNeverSeen);
  p = planner.plan(10010);
  planner.apply(p, {row(std::nullopt), row(10008)}, 0.001);
  EXPECT_EQ(planner.facts(1).db, probe::DbAnswer::kRow);
  EXPECT_DOUBLE_EQ(planner.facts(1).newest_ts, 10008);
}

TEST(FleetPlanner, CatchUpWalksSlicesNewestFirstUntilARow) {
  probe::FleetPlanner planner(fleet_agents(), small_settings());
  auto p = planner.plan(10000);
  planner.apply(p, {row(9990, true), row(std::nullopt, true)}, 0.001);
  EXPECT_EQ(planner.facts(1).db, probe::DbAnswer::kUnavailable);  // still catching up
  EXPECT_EQ(planner.catching_up(), 1u);
  p = planner.plan(10005);
  ASSERT_TRUE(p.slice);
  EXPECT_DOUBLE_EQ(p.slice->second, 9950);      // just below the first range
  EXPECT_DOUBLE_EQ(p.slice->first, 9950 - 50);  // first_slice wide
  const auto params = probe::fleet_params(p);
  EXPECT_EQ(params.slice_lo, std::optional<std::string>("9900.000000"));
  EXPECT_EQ(params.slice_hi, std::optional<std::string>("9950.000000"));
  // A fast query doubles the next slice.
  planner.apply(p, {row(std::nullopt), row(std::nullopt)}, 0.001);
  p = planner.plan(10010);
  ASSERT_TRUE(p.slice);
  EXPECT_DOUBLE_EQ(p.slice->second, 9900);
  EXPECT_DOUBLE_EQ(p.slice->first, 9900 - 100);
  // A slow one halves it (not below min_slice).
  planner.apply(p, {row(std::nullopt), row(std::nullopt)}, 0.5);
  p = planner.plan(10015);
  ASSERT_TRUE(p.slice);
  EXPECT_DOUBLE_EQ(p.slice->second, 9800);
  EXPECT_DOUBLE_EQ(p.slice->first, 9800 - 50);
  planner.apply(p, {row(std::nullopt), row(9760)}, 0.005);
  EXPECT_EQ(planner.facts(1).db, probe::DbAnswer::kRow);
  EXPECT_DOUBLE_EQ(planner.facts(1).newest_ts, 9760);
  EXPECT_EQ(planner.catching_up(), 0u);
  EXPECT_FALSE(planner.plan(10020).slice);
}

TEST(FleetPlanner, CatchUpStopsAtTheCap) {
  auto s = small_settings();
  s.cap = 200;
  probe::FleetPlanner planner(fleet_agents(), s);
  auto p = planner.plan(10000);
  planner.apply(p, {row(9990, true), row(std::nullopt, true)}, 0.001);
  for (int cycle = 1; cycle < 10 && planner.catching_up() > 0; ++cycle) {
    p = planner.plan(10000 + cycle);
    ASSERT_TRUE(p.slice);
    EXPECT_GE(p.slice->first, 10000 + cycle - 200);  // never below now - cap
    planner.apply(p, {row(std::nullopt), row(std::nullopt)}, 0.001);
  }
  EXPECT_EQ(planner.catching_up(), 0u);
  EXPECT_EQ(planner.facts(1).db, probe::DbAnswer::kOlderThanCap);
  EXPECT_FALSE(planner.plan(10020).slice);
}

TEST(FleetPlanner, CompositeIndexCatchesUpWithOneLateralProbe) {
  probe::FleetPlanner planner(fleet_agents(), small_settings());
  planner.set_composite_index(true);
  auto p = planner.plan(10000);
  EXPECT_EQ(p.lateral, (std::vector<std::optional<double>>{9000, 9000}));
  EXPECT_EQ(probe::fleet_params(p).lateral, "{9000.000000,9000.000000}");
  EXPECT_FALSE(p.slice);
  planner.apply(p, {row(9990, true), row(std::nullopt, true)}, 0.001);
  EXPECT_EQ(planner.facts(1).db, probe::DbAnswer::kOlderThanCap);  // nothing in the cap
  p = planner.plan(10005);
  EXPECT_FALSE(p.lateral[0] || p.lateral[1]);
  EXPECT_FALSE(p.slice);
}

// The probe's own settings (prober.cpp), not the small ones above.
probe::FleetPlannerSettings probe_settings(std::chrono::milliseconds interval) {
  common::Config cfg;
  cfg.interval = interval;
  return probe::planner_settings(probe::probe_options(cfg));
}

TEST(FleetPlanner, ProbeSettingsKeepAFewSecondsOfMarginWhateverTheInterval) {
  for (const auto interval : {1000ms, 5000ms, 30000ms, 120000ms}) {
    const auto s = probe_settings(interval);
    EXPECT_DOUBLE_EQ(s.margin, 5) << interval.count();
    EXPECT_DOUBLE_EQ(s.margin, probe::kLateCommitMargin);
    EXPECT_DOUBLE_EQ(s.first_slice, 60) << interval.count();
    EXPECT_DOUBLE_EQ(s.cap, 1800) << interval.count();  // 3 x the default 600 s threshold
  }
}

TEST(FleetPlanner, SteadyRangeIsTheIntervalPlusTheMargin) {
  // Interval 30 s (the default): each steady cycle scans the 30 s since the last answered cycle
  // plus 5 s, not the 120 s of the former margin (max(30 s, 3 intervals)).
  probe::FleetPlanner planner(fleet_agents(), probe_settings(30000ms));
  auto p = planner.plan(10000);
  EXPECT_DOUBLE_EQ(p.since, 10000 - 60);  // first cycle: the first 60 s
  planner.apply(p, {row(9990, true), row(9980, true)}, 0.001);
  for (double now = 10030; now <= 10120; now += 30) {
    p = planner.plan(now);
    EXPECT_DOUBLE_EQ(p.since, now - 30 - 5);
    EXPECT_EQ(probe::fleet_params(p).since, std::to_string(static_cast<int>(now) - 35) + ".000000");
    EXPECT_FALSE(p.slice);
    planner.apply(p, {row(now - 1), row(now - 2)}, 0.001);
  }
  // Cycles back to back (as bench_probe_cycle runs them): the range is about the margin.
  p = planner.plan(10120.07);
  EXPECT_DOUBLE_EQ(p.since, 10120 - 5);
}

TEST(FleetPlanner, LateCommitWithinTheMarginIsFoundBeyondItTheNextRowTells) {
  probe::FleetPlanner planner(fleet_agents(), probe_settings(5000ms));
  auto p = planner.plan(10000);
  planner.apply(p, {row(9998, true), row(9997, true)}, 0.001);
  // Cycle at 10005 answered; key 0's row stamped 10003 commits only after that cycle's query.
  p = planner.plan(10005);
  planner.apply(p, {row(std::nullopt), row(std::nullopt)}, 0.001);
  EXPECT_DOUBLE_EQ(planner.facts(0).newest_ts, 9998);
  // The next cycle's range starts 5 s below 10005: the late row (2 s late) is in it.
  p = planner.plan(10010);
  EXPECT_DOUBLE_EQ(p.since, 10000);
  EXPECT_GT(10003, p.since);
  planner.apply(p, {row(10003), row(std::nullopt)}, 0.001);
  EXPECT_DOUBLE_EQ(planner.facts(0).newest_ts, 10003);
  // A row stamped 10004 whose commit came after the query of the cycle at 10010 (over 6 s late)
  // is below the range of the cycle at 10015 (since 10005): never seen. The key keeps 10003
  // until the agent's next row, which a following range holds.
  p = planner.plan(10015);
  EXPECT_DOUBLE_EQ(p.since, 10005);
  EXPECT_LE(10004, p.since);  // the late row: outside
  planner.apply(p, {row(std::nullopt), row(std::nullopt)}, 0.001);
  EXPECT_DOUBLE_EQ(planner.facts(0).newest_ts, 10003);
  p = planner.plan(10020);
  EXPECT_GT(10017, p.since);
  planner.apply(p, {row(10017), row(std::nullopt)}, 0.001);
  EXPECT_DOUBLE_EQ(planner.facts(0).newest_ts, 10017);
}

TEST(FleetPlanner, RowsWrittenWhilePostgresWasAwayAreFoundOnReturn) {
  probe::FleetPlanner planner(fleet_agents(), probe_settings(5000ms));
  auto p = planner.plan(10000);
  planner.apply(p, {row(9998, true), row(9997, true)}, 0.001);
  p = planner.plan(10005);
  planner.apply(p, {row(10004), row(10001)}, 0.001);
  // Ten minutes without an answer (connect failures, timeouts): plans are made, never applied.
  for (double now = 10010; now < 10610; now += 5) {
    p = planner.plan(now);
    EXPECT_DOUBLE_EQ(p.since, 10005 - 5);
  }
  // Back: the range covers everything since the last answered cycle, minus the margin.
  p = planner.plan(10610);
  EXPECT_DOUBLE_EQ(p.since, 10000);
  EXPECT_FALSE(p.slice);
  planner.apply(p, {row(10300), row(std::nullopt)}, 0.001);
  EXPECT_DOUBLE_EQ(planner.facts(0).newest_ts, 10300);
  EXPECT_DOUBLE_EQ(planner.facts(1).newest_ts, 10001);
  // And the range closes up again.
  EXPECT_DOUBLE_EQ(planner.plan(10615).since, 10610 - 5);
}

TEST(FleetQuery, IsOneStatementWithASharedRangeScan) {
  const std::string sql = probe::kFleetQuerySql;
  EXPECT_NE(sql.find("unnest("), std::string::npos);
  EXPECT_NE(sql.find("d.\"timestamp\" > $3"), std::string::npos);  // the shared range
  EXPECT_NE(sql.find("GROUP BY k.i"), std::string::npos);          // max per key, not per table
  EXPECT_NE(sql.find("LATERAL"), std::string::npos);
  EXPECT_NE(sql.find("LIMIT 1"), std::string::npos);
  EXPECT_EQ(sql.find(';'), std::string::npos);
}

TEST(FleetQuery, BenchCopyMatches) {
  // bench/probe/fleet_query.sql is the same statement for EXPLAIN; keep them together.
  std::ifstream in(trading_heal::test::Bed::source_dir() + "/bench/probe/fleet_query.sql");
  ASSERT_TRUE(in) << "no bench/probe/fleet_query.sql under "
                  << trading_heal::test::Bed::source_dir();
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && text.back() == '\n') text.pop_back();
  EXPECT_EQ(text, probe::kFleetQuerySql);
}

TEST(Schedule, CyclesOverrunsAndNoOverlap) {
  const common::MonoTime t0{std::chrono::hours(1)};
  probe::CycleSchedule s(t0, {.interval = 1s, .db_budget = 600ms});
  EXPECT_TRUE(s.due(t0));
  s.begin(t0);
  EXPECT_FALSE(s.due(t0 + 2s));  // never two at once
  EXPECT_EQ(s.next_deadline(), t0 + 600ms);
  s.finish(t0 + 100ms);
  EXPECT_NEAR(s.last_cycle_seconds(), 0.1, 1e-9);
  EXPECT_EQ(s.overruns(), 0u);
  EXPECT_EQ(s.next_deadline(), t0 + 1s);
  // A cycle that lasts 2.5 intervals: the slots it covered are overruns, the next runs now.
  s.begin(t0 + 1s);
  s.finish(t0 + 3500ms);
  EXPECT_EQ(s.overruns(), 2u);
  EXPECT_TRUE(s.due(t0 + 3500ms));
  s.begin(t0 + 3500ms);
  s.finish(t0 + 3600ms);
  EXPECT_EQ(s.overruns(), 2u);
  EXPECT_EQ(s.next_deadline(), t0 + 4s);  // back on the grid
  // The loop was late by more than an interval.
  s.begin(t0 + 6200ms);
  EXPECT_EQ(s.overruns(), 4u);
  s.finish(t0 + 6300ms);
  EXPECT_EQ(s.next_deadline(), t0 + 7s);
  EXPECT_EQ(s.cycles(), 4u);
}

}  // namespace
