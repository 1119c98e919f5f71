// Unit tests of the probe's other pure pieces: /proc parsing, CPU ratio, heartbeat text, the
// fleet query's parameters, the cycle schedule.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "trading_heal/probe/fleet_query.hpp"
#include "trading_heal/probe/heartbeat.hpp"
#include "trading_heal/probe/proc.hpp"
#include "trading_heal/probe/schedule.hpp"

namespace {

using namespace trading_heal;
using namespace std::chrono_literals;

// A real /proc/PID/stat line with a comm holding a space and a parenthesis.
constexpr const char* kStat =
    "4242 (trading agent) S 1 4242 4242 0 -1 4194560 1234 0 0 0 150 50 0 0 20 0 3 0 987654 "
    "123456789 12800 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";

TEST(Proc, ParsesStat) {
  const auto st = probe::parse_proc_stat(kStat);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->state, 'S');
  EXPECT_EQ(st->cpu_ticks, 200u);
  EXPECT_EQ(st->start_ticks, 987654u);
  EXPECT_EQ(st->rss_pages, 12800u);
}

TEST(Proc, CommWithParenthesesAndZombie) {
  const auto st = probe::parse_proc_stat(
      "7 (a) b) c) Z 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 55 0 0 0");
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
  probe::CpuTracker t;
  probe::ProcSample s{true, false, 0, 100, 55, ""};
  EXPECT_EQ(t.update("A", s, 10.0, 100), 0.0);  // first sample
  s.cpu_ticks = 150;                               // 0.5 CPU s in 2 s
  EXPECT_NEAR(t.update("A", s, 12.0, 100), 0.25, 1e-9);
  s.cpu_ticks = 151;  // too soon after (an instant re-check): the last ratio stays
  EXPECT_NEAR(t.update("A", s, 12.1, 100), 0.25, 1e-9);
  s.start_ticks = 99;  // a new process (restart, PID reuse): starts over
  EXPECT_EQ(t.update("A", s, 14.0, 100), 0.0);
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

TEST(FleetQuery, KeysAndParams) {
  std::vector<common::AgentSpec> agents(4);
  agents[0] = {"BTC_USDT", "crypto-agent@BTC_USDT.service", "BTC-USDT", "default", "", "", true};
  agents[1] = {"BTC_USDT_x", "crypto-agent@BTC_USDT_x.service", "BTC-USDT", "x\"y", "", "", true};
  agents[2] = {"ETH_USDT", "crypto-agent@ETH_USDT.service", "ETH-USDT", "default", "", "", false};
  agents[3] = {"BTC_USDT2", "crypto-agent@BTC_USDT2.service", "BTC-USDT", "default", "", "", true};
  probe::AgeMemory memory;
  memory.observe(probe::age_key("BTC-USDT", "default"), 999.5, 1000);
  std::vector<int> idx;
  const auto keys = probe::fleet_keys(agents, memory, 1000, 100, idx);
  ASSERT_EQ(keys.size(), 2u);  // duplicate key shared, disabled agent left out
  EXPECT_EQ(idx, (std::vector<int>{0, 1, -1, 0}));
  EXPECT_DOUBLE_EQ(keys[0].since, 999.5);
  EXPECT_FALSE(keys[0].check_exists);
  EXPECT_DOUBLE_EQ(keys[1].since, 900);
  EXPECT_TRUE(keys[1].check_exists);
  const auto p = probe::fleet_params(keys);
  EXPECT_EQ(p.symbols, R"({"BTC-USDT","BTC-USDT"})");
  EXPECT_EQ(p.profiles, R"({"default","x\"y"})");
  EXPECT_EQ(p.since, "{999.500000,900.000000}");
  EXPECT_EQ(p.check, "{f,t}");
}

TEST(FleetQuery, RowsToAnswers) {
  probe::AgeFacts a;
  probe::apply_row(probe::FleetRow{12.5, std::nullopt}, a);
  EXPECT_EQ(a.db, probe::DbAnswer::kRow);
  EXPECT_EQ(a.newest_ts, 12.5);
  probe::apply_row(probe::FleetRow{std::nullopt, false}, a);
  EXPECT_EQ(a.db, probe::DbAnswer::kNeverSeen);
  probe::apply_row(probe::FleetRow{std::nullopt, true}, a);
  EXPECT_EQ(a.db, probe::DbAnswer::kOlderThanCap);
  probe::apply_row(probe::FleetRow{std::nullopt, std::nullopt}, a);
  EXPECT_EQ(a.db, probe::DbAnswer::kOlderThanCap);
}

TEST(FleetQuery, IsOneIndexFriendlyStatement) {
  const std::string sql = probe::kFleetQuerySql;
  EXPECT_NE(sql.find("unnest("), std::string::npos);
  EXPECT_NE(sql.find("LATERAL"), std::string::npos);
  EXPECT_NE(sql.find("LIMIT 1"), std::string::npos);
  EXPECT_EQ(sql.find("GROUP BY"), std::string::npos);
  EXPECT_EQ(sql.find("max("), std::string::npos);
}

TEST(FleetQuery, BenchCopyMatches) {
  // bench/probe/fleet_query.sql is the same statement for EXPLAIN; keep them together.
  const char* src = std::getenv("TRADING_HEAL_SOURCE_DIR");
  if (src == nullptr) GTEST_SKIP() << "TRADING_HEAL_SOURCE_DIR not set";
  std::ifstream in(std::string(src) + "/bench/probe/fleet_query.sql");
  if (!in) GTEST_SKIP() << "no bench/probe/fleet_query.sql";
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && text.back() == '\n') text.pop_back();
  EXPECT_EQ(text, probe::kFleetQuerySql);
}

TEST(Schedule, CyclesOverrunsAndNoOverlap) {
  const common::MonoTime t0{std::chrono::hours(1)};
  probe::CycleSchedule s(t0, 1s, 600ms);
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
