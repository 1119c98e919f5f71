// trading-heal-replay's core on histories with known stalls: a stall is restarted at its
// deadline plus the confirmation, as the live daemons do (threshold + ~2 s with the diagnosis
// at once); a short gap is not; a database outage holds; every planted stall of a generated month
// is found; a higher threshold restarts less.
#include "replay.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "compare.hpp"
#include "generate.hpp"
#include "rhythm.hpp"

namespace trading_heal::replay {
namespace {

common::Config config(double threshold_s = 600) {
  auto c = common::load_config([&](const std::string& n) -> std::optional<std::string> {
    if (n == "TRADING_HEAL_STALL_THRESHOLD") return std::to_string(threshold_s);
    return std::nullopt;
  });
  return *c;
}

constexpr double kStart = 1780000000;

// One agent every 5 s for `hours`, silent in [gap_from, gap_to).
History one_agent(double hours, double gap_from, double gap_to) {
  History h;
  Series s{"BTC-USDT", "default", {}};
  for (double t = kStart; t < kStart + hours * 3600; t += 5) {
    if (t >= gap_from && t < gap_to) continue;
    s.ts.push_back(t);
  }
  h.series.push_back(s);
  return h;
}

TEST(Replay, AStallIsRestartedAtItsDeadlineAndAShortGapIsNot) {
  const double stall = kStart + 3600;
  const auto r = run(one_agent(3, stall + 5, stall + 1800), config());
  ASSERT_EQ(r.stalls.size(), 1U);
  EXPECT_TRUE(r.stalls[0].caught);
  EXPECT_GE(r.stalls[0].detection_s, 0.0);
  EXPECT_LE(r.stalls[0].detection_s, 2.5) << "threshold + the 2 s confirmation, any interval";
  ASSERT_FALSE(r.findings.empty());
  EXPECT_EQ(r.findings[0].kind, Finding::Kind::kRestart);
  EXPECT_EQ(r.findings[0].agent, "BTC_USDT");
  EXPECT_NEAR(r.findings[0].since_decision, 602, 1);

  const auto blip = run(one_agent(3, stall, stall + 590), config());
  EXPECT_TRUE(blip.stalls.empty());
  EXPECT_TRUE(blip.findings.empty()) << "a 10 min gap under a 600 s threshold... is no stall";
}

TEST(Replay, TheRestartWaitsForTheModelAsTheLiveDaemonsDo) {
  const double stall = kStart + 3600;
  const History h = one_agent(3, stall + 5, stall + 1800);
  Options slow;
  slow.model_seconds = 8;  // asked at the first failed check (602 s), answered 8 s later
  const auto with_model = run(h, config(), slow);
  ASSERT_FALSE(with_model.findings.empty());
  EXPECT_NEAR(with_model.findings[0].since_decision, 608, 1);
  Options hanging;
  hanging.diagnosis = false;  // never answers: the restart waits DIAGNOSIS_WAIT (17 s)
  const auto without = run(h, config(), hanging);
  ASSERT_FALSE(without.findings.empty());
  EXPECT_NEAR(without.findings[0].since_decision, 617, 1);
}

TEST(Replay, ARestartIsNeedlessOnlyIfDecisionsCameBackWithoutARealOne) {
  // Silent for 11 min: the would-be restart at ~602 s, decisions back ~60 s later.
  const double stall = kStart + 3600;
  const History h = one_agent(3, stall + 5, stall + 660);
  const auto alone = run(h, config());
  ASSERT_EQ(alone.findings.size(), 1U);
  EXPECT_TRUE(alone.findings[0].needless) << "decisions came back on their own";
  History restarted = h;  // the healer in charge restarted it 630 s into the gap
  restarted.restarts.emplace_back("BTC_USDT", stall + 630);
  const auto with = run(restarted, config());
  ASSERT_EQ(with.findings.size(), 1U);
  EXPECT_FALSE(with.findings[0].needless) << "it came back because it was restarted";
}

TEST(Replay, ADatabaseOutageHoldsEveryRestart) {
  const double stall = kStart + 3600;
  History h = one_agent(3, stall, stall + 1800);
  h.db_outages.emplace_back(stall - 60, stall + 3000);
  const auto r = run(h, config());
  for (const auto& f : r.findings) {
    EXPECT_NE(f.kind, Finding::Kind::kRestart) << "restarted during the outage at " << f.at;
  }
}

TEST(Replay, EveryPlantedStallOfAGeneratedMonthIsFound) {
  const auto g = six_agents({.start = kStart, .days = 30, .seed = 7});
  const auto r = run(g.history, config(600));
  const auto specs = agents_of(g.history);
  std::size_t planted = 0;
  for (const auto& p : g.planted) {
    if (p.kind != "stall" || p.to - p.from <= 600) continue;
    ++planted;
    std::string agent;
    for (const auto& s : specs) {
      if (s.symbol == p.symbol && s.profile == p.profile) agent = s.instance;
    }
    const bool found = std::any_of(r.stalls.begin(), r.stalls.end(), [&](const Stall& s) {
      return s.agent == agent && s.from <= p.from + 1 && s.to >= p.to - 1;
    });
    EXPECT_TRUE(found) << agent << " stall " << p.from << ".." << p.to;
  }
  EXPECT_GE(planted, 40U) << "a month of six agents, a stall about every two days each";
  EXPECT_GT(r.checks, 6U * 30 * 2880);
}

TEST(Replay, AHigherThresholdRestartsLess) {
  const auto g = six_agents({.start = kStart, .days = 10, .seed = 3});
  std::size_t last = SIZE_MAX;
  for (double threshold : {300.0, 600.0, 900.0}) {
    const auto r = run(g.history, config(threshold));
    std::size_t restarts = 0;
    for (const auto& a : r.agents) restarts += a.restarts;
    EXPECT_LE(restarts, last) << "threshold " << threshold;
    last = restarts;
  }
}

TEST(Rhythm, EachAgentsGapsGiveItsThresholdAndANightlyPauseIsSeen) {
  const auto g = six_agents({.start = kStart, .days = 30, .seed = 7});
  const auto rs = rhythms(g.history);
  ASSERT_EQ(rs.size(), 6U);
  std::map<std::string, Rhythm> by;
  for (const auto& r : rs) by[r.agent] = r;
  const Rhythm& btc = by.at("BTC_USDT");
  EXPECT_NEAR(btc.median_s, 5, 0.6);
  EXPECT_LT(btc.p999_s, 6);
  EXPECT_FALSE(btc.hour_dependent);
  EXPECT_EQ(btc.recommended_s, 300) << "3 x 5.5 s is below the floor";
  EXPECT_GE(btc.would_raise, 10U) << "its planted stalls";
  const Rhythm& sol = by.at("SOL_USDT");
  EXPECT_TRUE(sol.hour_dependent) << "it pauses every night";
  EXPECT_FALSE(sol.quiet_hours.empty());
  EXPECT_LT(sol.recommended_s, 3600) << "from its active hours, not its 8 h pause";
  EXPECT_GT(sol.max_s, 7 * 3600);
  const Rhythm& doge = by.at("DOGE_USDT");
  EXPECT_GT(doge.recommended_s, 300) << "bursts every 1-3 min: 3 x its p99.9";
  EXPECT_DOUBLE_EQ(doge.recommended_s, 3 * doge.p999_s);
  History few = one_agent(0.5, 0, 0);  // 360 gaps: too few to recommend
  EXPECT_EQ(rhythms(few)[0].recommended_s, 0);
}

TEST(CompareAudit, ShadowRecordsAgainstTheJournalsRestartJobs) {
  // A shadow audit: two would_restart records, a diagnosis, a failed would_restart.
  const std::string audit =
      R"({"ts":"2026-12-03T15:44:11.248Z","action":"would_restart","agent":"BTC_USDT","success":true})"
      "\n"
      R"({"ts":"2026-12-03T15:45:00Z","action":"diagnosis","agent":"BTC_USDT"})"
      "\n"
      R"({"ts":"2026-12-03T16:00:00.5Z","action":"would_restart","agent":"ETH_USDT","success":true})"
      "\n"
      R"({"ts":"2026-12-03T16:10:00Z","action":"would_restart","agent":"XRP_USDT","success":false})"
      "\n";
  auto ours = audit_actions(audit);
  ASSERT_TRUE(ours) << ours.error();
  ASSERT_EQ(ours->size(), 2U);
  EXPECT_NEAR((*ours)[0].at, 1796312651.248, 1e-3);
  // The journal: a restart job of BTC 40 s later (user manager), one of SOL (system manager),
  // a start job, another unit's restart.
  const std::string journal =
      R"({"USER_UNIT":"crypto-agent@BTC_USDT.service","JOB_TYPE":"restart","JOB_RESULT":"done","__REALTIME_TIMESTAMP":"1796312691000000"})"
      "\n"
      R"({"UNIT":"crypto-agent@SOL_USDT.service","JOB_TYPE":"restart","JOB_RESULT":"done","__REALTIME_TIMESTAMP":"1796313000000000"})"
      "\n"
      R"({"UNIT":"crypto-agent@ETH_USDT.service","JOB_TYPE":"start","JOB_RESULT":"done","__REALTIME_TIMESTAMP":"1796313600000000"})"
      "\n"
      R"({"UNIT":"ssh.service","JOB_TYPE":"restart","JOB_RESULT":"done","__REALTIME_TIMESTAMP":"1796313600000000"})"
      "\n";
  auto theirs = journal_restarts(journal);
  ASSERT_TRUE(theirs) << theirs.error();
  ASSERT_EQ(theirs->size(), 2U);
  EXPECT_EQ((*theirs)[0].agent, "BTC_USDT");
  const auto c = compare(*ours, *theirs, 300);
  ASSERT_EQ(c.agreed.size(), 1U);
  EXPECT_EQ(c.agreed[0].first.agent, "BTC_USDT");
  ASSERT_EQ(c.only_ours.size(), 1U);
  EXPECT_EQ(c.only_ours[0].agent, "ETH_USDT");
  ASSERT_EQ(c.only_theirs.size(), 1U);
  EXPECT_EQ(c.only_theirs[0].agent, "SOL_USDT");
  EXPECT_EQ(compare(*ours, *theirs, 10).agreed.size(), 0U) << "40 s apart, a 10 s window";
  auto bad = audit_actions("{\"action\":\"would_restart\",\"ts\":\"yesterday\"}\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("line 1"), std::string::npos) << bad.error();
}

TEST(Rhythm, AnAgentSlowerOnWeekendsIsSeen) {
  History h;
  Series s{"BTC-USDT", "default", {}};
  // Four weeks: every 60 s on weekdays, every 30 min on Saturdays and Sundays (UTC).
  for (double t = kStart; t < kStart + 28 * 86400;) {
    s.ts.push_back(t);
    const auto day = static_cast<long>(std::floor(t / 86400) + 4) % 7;  // 0 = Sunday
    t += (day == 0 || day == 6) ? 1800 : 60;
  }
  h.series.push_back(s);
  const auto r = rhythms(h)[0];
  EXPECT_TRUE(r.weekday_dependent);
  EXPECT_FALSE(r.hour_dependent);
  EXPECT_NEAR(r.weekday_p99_s[3], 60, 1) << "Wednesday";
  EXPECT_NEAR(r.weekday_p99_s[6], 1800, 1) << "Saturday";
}

TEST(Replay, CsvIsReadAndItsErrorsNameTheLine) {
  auto h =
      parse_csv("timestamp,symbol,profile\n1780000000,BTC-USDT,default\n1780000005.5,ETH-USDT,\n");
  ASSERT_TRUE(h) << h.error();
  ASSERT_EQ(h->series.size(), 2U);
  EXPECT_EQ(h->series[1].profile, "default");
  EXPECT_DOUBLE_EQ(h->series[1].ts[0], 1780000005.5);
  auto bad = parse_csv("1780000000,BTC-USDT,default\nnot-a-time,BTC-USDT,default\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("line 2"), std::string::npos) << bad.error();
  EXPECT_FALSE(parse_csv(""));
}

}  // namespace
}  // namespace trading_heal::replay
