// Table-driven tests of the probe's verdict logic: facts -> verdict, checks, ages, failures.
#include "trading_heal/probe/verdict.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace {

using namespace trading_heal;
using probe::AgeFacts;
using probe::AgentFacts;
using probe::DbAnswer;
using probe::ProcessFacts;
using probe::UnitFacts;
using proto::AgeSource;
using proto::Verdict;

constexpr double kNow = 1785000000;

common::AgentSpec spec() {
  common::AgentSpec a;
  a.instance = "BTC_USDT";
  a.unit = "crypto-agent@BTC_USDT.service";
  a.symbol = "BTC-USDT";
  a.profile = "default";
  return a;
}

probe::VerdictPolicy policy() {
  probe::VerdictPolicy p;
  p.stall_threshold_s = 600;
  p.age_cap_s = 1800;
  p.future_tolerance_s = 5;
  p.startup_grace_s = 120;
  return p;
}

UnitFacts unit(const std::string& active, const std::string& sub, const std::string& result,
               std::uint32_t pid, std::optional<double> entered = kNow - 3600) {
  return UnitFacts{"loaded", active, sub, result, pid, 0, entered};
}

UnitFacts running() { return unit("active", "running", "success", 4242); }
UnitFacts exited_unbidden() {
  UnitFacts u = unit("inactive", "dead", "success", 0);
  u.exited_unbidden = true;
  return u;
}
ProcessFacts alive() { return ProcessFacts{true, false, std::nullopt, 50 << 20, 0.1}; }
AgeFacts db_age(double age) { return AgeFacts{DbAnswer::kRow, kNow - age, std::nullopt}; }
AgeFacts no_db(std::optional<double> hb_age = std::nullopt) {
  AgeFacts a;
  if (hb_age) a.heartbeat_ts = kNow - *hb_age;
  return a;
}

struct Case {
  const char* name;
  std::optional<UnitFacts> unit;
  std::optional<ProcessFacts> process;
  AgeFacts age;
  Verdict verdict;
  AgeSource source;
  std::optional<double> reported_age;
};

std::vector<Case> cases() {
  ProcessFacts gone{false, false, std::nullopt, 0, 0};
  ProcessFacts zombie{true, true, std::nullopt, 0, 0};
  ProcessFacts wrong_cmdline{true, false, false, 0, 0};
  ProcessFacts right_cmdline{true, false, true, 0, 0};
  AgeFacts skewed{DbAnswer::kRow, kNow + 3600, std::nullopt};
  AgeFacts old{DbAnswer::kOlderThanCap, 0, std::nullopt};
  AgeFacts never{DbAnswer::kNeverSeen, 0, kNow - 3};
  AgeFacts never_no_hb{DbAnswer::kNeverSeen, 0, std::nullopt};
  AgeFacts db_fresh_hb_old = db_age(10);
  db_fresh_hb_old.heartbeat_ts = kNow - 5000;
  AgeFacts db_old_hb_fresh = db_age(900);
  db_old_hb_fresh.heartbeat_ts = kNow - 2;
  return {
      {"healthy from db", running(), alive(), db_age(12), Verdict::kHealthy, AgeSource::kDb, 12},
      {"age at threshold is healthy", running(), alive(), db_age(600), Verdict::kHealthy,
       AgeSource::kDb, 600},
      {"age past threshold is stalled", running(), alive(), db_age(601), Verdict::kStalled,
       AgeSource::kDb, 601},
      {"db wins over a stale heartbeat", running(), alive(), db_fresh_hb_old, Verdict::kHealthy,
       AgeSource::kDb, 10},
      {"db answer wins over a fresh heartbeat", running(), alive(), db_old_hb_fresh,
       Verdict::kStalled, AgeSource::kDb, 900},
      {"db down: heartbeat fresh", running(), alive(), no_db(3), Verdict::kHealthy,
       AgeSource::kHeartbeat, 3},
      {"db down: heartbeat old", running(), alive(), no_db(700), Verdict::kStalled,
       AgeSource::kHeartbeat, 700},
      {"db down, no heartbeat, old start: unknown", running(), alive(), no_db(), Verdict::kUnknown,
       AgeSource::kNone, std::nullopt},
      {"db down, no heartbeat, recent start: grace",
       unit("active", "running", "success", 7, kNow - 20), alive(), no_db(), Verdict::kHealthy,
       AgeSource::kNone, std::nullopt},
      {"older than the cap, no memory", running(), alive(), old, Verdict::kStalled, AgeSource::kDb,
       1800},
      {"never seen falls back to heartbeat", running(), alive(), never, Verdict::kHealthy,
       AgeSource::kHeartbeat, 3},
      {"never seen, no heartbeat", running(), alive(), never_no_hb, Verdict::kUnknown,
       AgeSource::kNone, std::nullopt},
      {"future timestamp first seen: age 0", running(), alive(), skewed, Verdict::kHealthy,
       AgeSource::kDb, 0},
      {"startup grace caps the age", unit("active", "running", "success", 7, kNow - 30), alive(),
       db_age(5000), Verdict::kHealthy, AgeSource::kDb, 5000},
      {"30 s bootstrap past the threshold: grace",
       unit("active", "running", "success", 7, kNow - 130), alive(), db_age(5000),
       Verdict::kHealthy, AgeSource::kDb, 5000},
      {"grace + threshold over: stalled", unit("active", "running", "success", 7, kNow - 721),
       alive(), db_age(5000), Verdict::kStalled, AgeSource::kDb, 5000},
      {"decided since start: plain age, no grace",
       unit("active", "running", "success", 7, kNow - 700), alive(), db_age(650), Verdict::kStalled,
       AgeSource::kDb, 650},
      {"no age source, long since start: unknown",
       unit("active", "running", "success", 7, kNow - 9000), alive(), no_db(), Verdict::kUnknown,
       AgeSource::kNone, std::nullopt},
      {"no ActiveEnterTimestamp: no grace", unit("active", "running", "success", 7, std::nullopt),
       alive(), db_age(5000), Verdict::kStalled, AgeSource::kDb, 5000},
      {"reloading counts as active", unit("reloading", "reload", "success", 7), alive(), db_age(1),
       Verdict::kHealthy, AgeSource::kDb, 1},
      {"process gone", running(), gone, db_age(1), Verdict::kDown, AgeSource::kDb, 1},
      {"zombie", running(), zombie, db_age(1), Verdict::kDown, AgeSource::kDb, 1},
      {"cmdline mismatch", running(), wrong_cmdline, db_age(1), Verdict::kDown, AgeSource::kDb, 1},
      {"cmdline match", running(), right_cmdline, db_age(1), Verdict::kHealthy, AgeSource::kDb, 1},
      {"active without MainPID", unit("active", "running", "success", 0), std::nullopt, db_age(1),
       Verdict::kDown, AgeSource::kDb, 1},
      {"process not examined", running(), std::nullopt, db_age(1), Verdict::kUnknown,
       AgeSource::kDb, 1},
      {"failed unit", unit("failed", "failed", "signal", 0), std::nullopt, db_age(1),
       Verdict::kDown, AgeSource::kDb, 1},
      {"inactive after failure", unit("inactive", "dead", "exit-code", 0), std::nullopt, db_age(1),
       Verdict::kDown, AgeSource::kDb, 1},
      {"stopped cleanly", unit("inactive", "dead", "success", 0), std::nullopt, db_age(1),
       Verdict::kStopped, AgeSource::kDb, 1},
      {"stopped cleanly, stale age: still stopped", unit("inactive", "dead", "success", 0),
       std::nullopt, db_age(9000), Verdict::kStopped, AgeSource::kDb, 9000},
      {"exited by itself with status 0 (no job): down", exited_unbidden(), std::nullopt, db_age(1),
       Verdict::kDown, AgeSource::kDb, 1},
      {"systemd restarting it", unit("activating", "auto-restart", "signal", 0), std::nullopt,
       db_age(1), Verdict::kDown, AgeSource::kDb, 1},
      {"starting", unit("activating", "start", "success", 0), std::nullopt, db_age(1),
       Verdict::kUnknown, AgeSource::kDb, 1},
      {"stopping", unit("deactivating", "stop-sigterm", "success", 7), std::nullopt, db_age(1),
       Verdict::kUnknown, AgeSource::kDb, 1},
      {"unit not found", UnitFacts{"not-found", "inactive", "dead", "", 0, 0, std::nullopt},
       std::nullopt, db_age(1), Verdict::kDown, AgeSource::kDb, 1},
      {"systemd silent", std::nullopt, std::nullopt, db_age(1), Verdict::kUnknown, AgeSource::kDb,
       1},
  };
}

TEST(Verdict, Table) {
  for (const auto& c : cases()) {
    SCOPED_TRACE(c.name);
    probe::AgeMemory memory;
    AgentFacts f{c.unit, c.process, c.age};
    const auto r = probe::evaluate(spec(), f, policy(), kNow, memory);
    EXPECT_EQ(r.verdict, c.verdict) << proto::to_string(r.verdict) << " detail: " << r.detail;
    EXPECT_EQ(r.age_source, c.source);
    ASSERT_EQ(r.decision_age_seconds.has_value(), c.reported_age.has_value());
    if (c.reported_age) {
      EXPECT_NEAR(*r.decision_age_seconds, *c.reported_age, 1e-6);
    }
    EXPECT_EQ(r.unit_ok,
              c.unit && c.unit->load_state == "loaded" &&
                  (c.unit->active_state == "active" || c.unit->active_state == "reloading"));
    if (c.verdict == Verdict::kHealthy) {
      EXPECT_TRUE(r.unit_ok && r.process_ok && r.age_ok);
    }
    if (c.verdict == Verdict::kStalled) {
      EXPECT_TRUE(r.unit_ok && r.process_ok && !r.age_ok);
    }
    if (c.verdict != Verdict::kHealthy) {
      EXPECT_FALSE(r.detail.empty());
    }
    EXPECT_EQ(r.agent, "BTC_USDT");
    EXPECT_EQ(r.unit, "crypto-agent@BTC_USDT.service");
  }
}

TEST(Verdict, ReportsUnitFactsAndResources) {
  probe::AgeMemory memory;
  UnitFacts u = running();
  u.n_restarts = 7;
  const auto r = probe::evaluate(spec(), AgentFacts{u, alive(), db_age(3)}, policy(), kNow, memory);
  EXPECT_EQ(r.main_pid, 4242u);
  EXPECT_EQ(r.n_restarts, 7u);
  EXPECT_EQ(r.rss_bytes, 50u << 20);
  EXPECT_DOUBLE_EQ(r.cpu_ratio, 0.1);
  EXPECT_EQ(r.active_state, "active");
  EXPECT_EQ(r.sub_state, "running");
  ASSERT_TRUE(r.active_enter_ts);
}

TEST(Verdict, NeverSeenIsFlagged) {
  probe::AgeMemory memory;
  const auto r = probe::evaluate(
      spec(), AgentFacts{running(), alive(), AgeFacts{DbAnswer::kNeverSeen, 0, kNow - 2}}, policy(),
      kNow, memory);
  EXPECT_TRUE(r.never_seen);
  EXPECT_NE(r.detail.find("no decision ever"), std::string::npos);
}

TEST(Verdict, FutureTimestampIsNotFreshForever) {
  probe::AgeMemory memory;
  const AgeFacts skewed{DbAnswer::kRow, kNow + 3600, std::nullopt};
  auto r = probe::evaluate(spec(), AgentFacts{running(), alive(), skewed}, policy(), kNow, memory);
  EXPECT_TRUE(r.clock_skew);
  EXPECT_EQ(r.verdict, Verdict::kHealthy);
  // The same future row, 601 s later: no newer decision since -> stalled, skew still reported.
  r = probe::evaluate(spec(), AgentFacts{running(), alive(), skewed}, policy(), kNow + 601, memory);
  EXPECT_TRUE(r.clock_skew);
  EXPECT_EQ(r.verdict, Verdict::kStalled);
  ASSERT_TRUE(r.decision_age_seconds);
  EXPECT_NEAR(*r.decision_age_seconds, 601, 1e-6);
}

TEST(Verdict, MemoryKeepsExactAgeBeyondTheWindow) {
  probe::AgeMemory memory;
  (void)probe::evaluate(spec(), AgentFacts{running(), alive(), db_age(100)}, policy(), kNow,
                        memory);
  // Later the row is outside the window: the memory still knows its timestamp.
  const AgeFacts old{DbAnswer::kOlderThanCap, 0, std::nullopt};
  const auto r =
      probe::evaluate(spec(), AgentFacts{running(), alive(), old}, policy(), kNow + 4000, memory);
  ASSERT_TRUE(r.decision_age_seconds);
  EXPECT_NEAR(*r.decision_age_seconds, 4100, 1e-6);
  EXPECT_EQ(r.verdict, Verdict::kStalled);
  EXPECT_NEAR(probe::window_start(memory, probe::age_key("BTC-USDT", "default"), kNow + 100, 1800),
              kNow - 100, 1e-6);
  EXPECT_NEAR(probe::window_start(memory, probe::age_key("BTC-USDT", "default"), kNow + 4000, 1800),
              kNow + 2200, 1e-6);
}

TEST(Verdict, ProfilesAreSeparateKeys) {
  probe::AgeMemory memory;
  auto a = spec();
  auto b = spec();
  b.instance = "BTC_USDT_conservative";
  b.profile = "conservative";
  EXPECT_EQ(
      probe::evaluate(a, AgentFacts{running(), alive(), db_age(5)}, policy(), kNow, memory).verdict,
      Verdict::kHealthy);
  EXPECT_EQ(probe::evaluate(b, AgentFacts{running(), alive(), db_age(900)}, policy(), kNow, memory)
                .verdict,
            Verdict::kStalled);
}

// With auto thresholds each agent is judged by its own (the probe passes it in the policy), and
// the report says which one and where it came from.
TEST(Verdict, EachAgentIsJudgedByItsOwnThresholdAndTheReportSaysWhich) {
  probe::AgeMemory memory;
  probe::VerdictPolicy learned = policy();
  learned.stall_threshold_s = 45;
  learned.threshold_source = proto::ThresholdSource::kLearned;
  const auto stalled =
      probe::evaluate(spec(), AgentFacts{running(), alive(), db_age(60)}, learned, kNow, memory);
  EXPECT_EQ(stalled.verdict, Verdict::kStalled) << "60 s: over its learned 45 s";
  EXPECT_FALSE(stalled.age_ok);
  EXPECT_EQ(stalled.stall_threshold_seconds, 45);
  EXPECT_EQ(stalled.threshold_source, proto::ThresholdSource::kLearned);
  const auto fixed =
      probe::evaluate(spec(), AgentFacts{running(), alive(), db_age(60)}, policy(), kNow, memory);
  EXPECT_EQ(fixed.verdict, Verdict::kHealthy) << "the same age, the fixed 600 s";
  EXPECT_EQ(fixed.stall_threshold_seconds, 600);
  EXPECT_EQ(fixed.threshold_source, proto::ThresholdSource::kFixed);
  // The startup grace still comes first: started 100 s ago, no decision since.
  const auto booting = probe::evaluate(
      spec(),
      AgentFacts{unit("active", "running", "success", 4242, kNow - 100), alive(), db_age(5000)},
      learned, kNow, memory);
  EXPECT_EQ(booting.verdict, Verdict::kHealthy) << booting.detail;
}

TEST(FailureCounter, CountsPerVerdict) {
  struct Step {
    Verdict v;
    std::uint32_t expect;
  };
  const std::vector<Step> steps = {
      {Verdict::kDown, 1},    {Verdict::kStalled, 2}, {Verdict::kUnknown, 2},
      {Verdict::kStopped, 2}, {Verdict::kDown, 3},    {Verdict::kHealthy, 0},
      {Verdict::kUnknown, 0}, {Verdict::kStalled, 1}, {Verdict::kStopped, 1},
      {Verdict::kHealthy, 0},
  };
  probe::FailureCounter c;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    EXPECT_EQ(c.apply("A", steps[i].v), steps[i].expect) << "step " << i;
  }
  EXPECT_EQ(c.get("B"), 0u);
  EXPECT_EQ(c.apply("B", Verdict::kDown), 1u);
  EXPECT_EQ(c.get("A"), 0u);
}

}  // namespace
