// The per-agent check deadlines and the quick confirmation, with injected time (no sleeps): the
// verdict logic (evaluate) gives the effective age, the schedule turns it into the moment the
// agent turns stale, and a failure into its confirmation checks.
#include "trading_heal/probe/deadlines.hpp"

#include <gtest/gtest.h>

#include "trading_heal/probe/verdict.hpp"

namespace {

using namespace trading_heal;
using namespace std::chrono_literals;
using common::MonoTime;
using probe::DeadlinePolicy;
using probe::DeadlineSchedule;
using proto::Verdict;

constexpr double kWall = 1785000000;
const MonoTime kT0{std::chrono::hours(1000)};

DeadlinePolicy policy(double threshold = 600) {
  DeadlinePolicy p;
  p.stall_threshold_s = threshold;
  p.confirm = 2s;
  p.confirm_down = 500ms;
  p.consecutive_threshold = 2;
  return p;
}

common::AgentSpec agent() {
  common::AgentSpec a;
  a.instance = "BTC_USDT";
  a.unit = "crypto-agent@BTC_USDT.service";
  a.symbol = "BTC-USDT";
  a.profile = "default";
  return a;
}

// The facts of a running agent whose newest decision was made at kWall + `decided` seconds
// (nullopt: none known), started at kWall + `started`.
probe::AgentFacts facts(std::optional<double> decided, double started = -3600) {
  probe::AgentFacts f;
  f.unit = probe::UnitFacts{"loaded", "active", "running", "success", 42, 0, kWall + started};
  f.process = probe::ProcessFacts{true, false, std::nullopt, 1 << 20, 0.1};
  if (decided) f.age = probe::AgeFacts{probe::DbAnswer::kRow, kWall + *decided, std::nullopt};
  return f;
}

// One check of the agent at kT0 + `at` (wall kWall + `at`) with those facts: the verdict, and
// the schedule updated.
Verdict check(DeadlineSchedule& s, probe::AgeMemory& memory, probe::FailureCounter& failures,
              const probe::AgentFacts& f, std::chrono::milliseconds at, double threshold = 600) {
  probe::VerdictPolicy vp;
  vp.stall_threshold_s = threshold;
  vp.startup_grace_s = 120;
  std::optional<double> effective;
  const double wall = kWall + std::chrono::duration<double>(at).count();
  auto r = probe::evaluate(agent(), f, vp, wall, memory, &effective);
  const auto n = failures.apply("BTC_USDT", r.verdict, kT0 + at, s.failure_spacing(r.verdict));
  s.after_check(0, kT0 + at, r.verdict, n, effective);
  return r.verdict;
}

TEST(Deadlines, TheDeadlineIsWhenTheNewestDecisionTurnsStaleAndMovesWithEachDecision) {
  DeadlineSchedule s(1, policy());
  probe::AgeMemory memory;
  probe::FailureCounter failures;
  EXPECT_EQ(check(s, memory, failures, facts(-100), 0s), Verdict::kHealthy);
  ASSERT_TRUE(s.deadline(0));
  EXPECT_EQ(*s.deadline(0), kT0 + 500s + s.policy().past);  // 600 - 100 s from now
  // A newer decision (made at 25 s, checked at 30 s) moves it.
  EXPECT_EQ(check(s, memory, failures, facts(25), 30s), Verdict::kHealthy);
  EXPECT_EQ(*s.deadline(0), kT0 + 625s + s.policy().past);
  EXPECT_TRUE(s.take_due(kT0 + 625s).empty()) << "due before the age passed the threshold";
  EXPECT_EQ(s.take_due(kT0 + 625s + s.policy().past).size(), 1U);
  EXPECT_FALSE(s.deadline(0)) << "a check sets the next one; taking clears it";
}

TEST(Deadlines, EachAgentsDeadlineComesFromItsOwnThreshold) {
  DeadlineSchedule s(2, policy());
  s.set_stall_threshold(1, 45);  // learned (TRADING_HEAL_STALL_THRESHOLD=auto)
  EXPECT_EQ(s.stall_threshold(0), 600);
  EXPECT_EQ(s.stall_threshold(1), 45);
  // Both decided 10 s ago.
  s.after_check(0, kT0, Verdict::kHealthy, 0, 10.0);
  s.after_check(1, kT0, Verdict::kHealthy, 0, 10.0);
  EXPECT_EQ(*s.deadline(0), kT0 + 590s + s.policy().past);
  EXPECT_EQ(*s.deadline(1), kT0 + 35s + s.policy().past);
  EXPECT_EQ(s.take_due(kT0 + 35s + s.policy().past), std::vector<std::size_t>{1});
}

TEST(Deadlines, AStallIsConfirmedTwoSecondsAfterItsDeadlineThenLeftToTheCycle) {
  DeadlineSchedule s(1, policy(20));
  probe::AgeMemory memory;
  probe::FailureCounter failures;
  // The last decision at 0 s: stale at 20 s.
  check(s, memory, failures, facts(0), 0s, 20);
  const auto at = *s.deadline(0);
  EXPECT_EQ(at, kT0 + 20s + s.policy().past);
  ASSERT_EQ(s.take_due(at).size(), 1U);
  const auto first = std::chrono::duration_cast<std::chrono::milliseconds>(at - kT0);
  EXPECT_EQ(check(s, memory, failures, facts(0), first, 20), Verdict::kStalled);
  EXPECT_EQ(*s.deadline(0), at + 2s) << "the confirming check";
  EXPECT_EQ(check(s, memory, failures, facts(0), first + 2s, 20), Verdict::kStalled);
  EXPECT_FALSE(s.deadline(0)) << "confirmed (2 in a row): no more quick checks";
}

TEST(Deadlines, ACycleBetweenAFailureAndItsConfirmationDoesNotConfirmEarly) {
  DeadlineSchedule s(1, policy(20));
  probe::AgeMemory memory;
  probe::FailureCounter failures;
  check(s, memory, failures, facts(0), 0s, 20);
  ASSERT_EQ(s.take_due(*s.deadline(0)).size(), 1U);
  EXPECT_EQ(check(s, memory, failures, facts(0), 20050ms, 20), Verdict::kStalled);
  EXPECT_EQ(failures.get("BTC_USDT"), 1U);
  // The regular cycle (interval 5 s) comes 0.9 s later: still stalled, but too soon to count.
  EXPECT_EQ(check(s, memory, failures, facts(0), 20950ms, 20), Verdict::kStalled);
  EXPECT_EQ(failures.get("BTC_USDT"), 1U) << "a second failure 0.9 s after the first";
  EXPECT_EQ(*s.deadline(0), kT0 + 22050ms) << "the confirmation keeps its time";
  // A check batched up to the batch window early still confirms.
  EXPECT_EQ(check(s, memory, failures, facts(0), 22040ms, 20), Verdict::kStalled);
  EXPECT_EQ(failures.get("BTC_USDT"), 2U);
  EXPECT_FALSE(s.deadline(0)) << "confirmed";
}

TEST(Deadlines, FailuresAreSpacedByTheConfirmationIntervalDownsByHalfASecond) {
  const DeadlineSchedule s(1, policy());
  EXPECT_EQ(s.failure_spacing(Verdict::kStalled), 2s - s.policy().batch);
  EXPECT_EQ(s.failure_spacing(Verdict::kDown), 500ms - s.policy().batch);
  probe::FailureCounter c;
  EXPECT_EQ(c.apply("A", Verdict::kStalled, kT0, s.failure_spacing(Verdict::kStalled)), 1U);
  // The crash signal 100 ms after a stalled check: a new verdict, but not a second failure yet.
  EXPECT_EQ(c.apply("A", Verdict::kDown, kT0 + 100ms, s.failure_spacing(Verdict::kDown)), 1U);
  EXPECT_EQ(c.apply("A", Verdict::kDown, kT0 + 600ms, s.failure_spacing(Verdict::kDown)), 2U);
  // Healthy resets the count and its time: the next failure counts at once.
  EXPECT_EQ(c.apply("A", Verdict::kHealthy, kT0 + 700ms, s.failure_spacing(Verdict::kHealthy)), 0U);
  EXPECT_EQ(c.apply("A", Verdict::kDown, kT0 + 800ms, s.failure_spacing(Verdict::kDown)), 1U);
}

TEST(Deadlines, ABlipShorterThanTheConfirmationDoesNotConfirm) {
  DeadlineSchedule s(1, policy(20));
  probe::AgeMemory memory;
  probe::FailureCounter failures;
  // A slow insert: at the deadline no new row yet, 2 s later it is there.
  EXPECT_EQ(check(s, memory, failures, facts(-20.05), 0s, 20), Verdict::kStalled);
  EXPECT_EQ(failures.get("BTC_USDT"), 1U);
  EXPECT_EQ(*s.deadline(0), kT0 + 2s);
  EXPECT_EQ(check(s, memory, failures, facts(0.5), 2s, 20), Verdict::kHealthy);
  EXPECT_EQ(failures.get("BTC_USDT"), 0U) << "the count starts again";
  EXPECT_EQ(*s.deadline(0), kT0 + 20500ms + s.policy().past);
}

TEST(Deadlines, ADownIsConfirmedWithinHalfASecondAndSignalBurstsDoNotPostponeIt) {
  DeadlineSchedule s(1, policy());
  s.after_check(0, kT0, Verdict::kDown, 1, std::nullopt);
  EXPECT_EQ(*s.deadline(0), kT0 + 500ms);
  // More signals about the same crash (the count unchanged) 100 ms later: same confirmation.
  s.after_check(0, kT0 + 100ms, Verdict::kDown, 1, std::nullopt);
  EXPECT_EQ(*s.deadline(0), kT0 + 500ms);
  // A confirmation interval below half a second is used as it is.
  DeadlinePolicy fast = policy();
  fast.confirm = 200ms;
  DeadlineSchedule f(1, fast);
  f.after_check(0, kT0, Verdict::kDown, 1, std::nullopt);
  EXPECT_EQ(*f.deadline(0), kT0 + 200ms);
}

TEST(Deadlines, ABurstOfDueDeadlinesIsOneBatch) {
  DeadlineSchedule s(5, policy());
  s.set(0, kT0 + 10s);
  s.set(1, kT0 + 10s + 5ms);
  s.set(2, kT0 + 10s + 19ms);
  s.set(3, kT0 + 10s + 40ms);  // outside the 20 ms batch window
  s.set(4, kT0 + 60s);
  EXPECT_EQ(s.next(), kT0 + 10s);
  EXPECT_TRUE(s.take_due(kT0 + 9999ms).empty());
  const auto due = s.take_due(kT0 + 10s);
  EXPECT_EQ(due, (std::vector<std::size_t>{0, 1, 2}));
  EXPECT_EQ(s.next(), kT0 + 10s + 40ms);
  EXPECT_EQ(s.take_due(kT0 + 11s), (std::vector<std::size_t>{3}));
  EXPECT_EQ(s.pending(), 1U);
}

TEST(Deadlines, TheStartupGraceIsHonoured) {
  DeadlineSchedule s(1, policy());
  probe::AgeMemory memory;
  probe::FailureCounter failures;
  // Restarted 10 s ago, no decision since (the newest is from before the start): stale only at
  // start + grace (120 s) + threshold (600 s).
  EXPECT_EQ(check(s, memory, failures, facts(-900, -10), 0s), Verdict::kHealthy);
  EXPECT_EQ(*s.deadline(0), kT0 + 710s + s.policy().past);
  // UNKNOWN (systemd did not answer) and STOPPED set no deadline: the cycle watches them.
  s.after_check(0, kT0, Verdict::kUnknown, 0, std::nullopt);
  EXPECT_FALSE(s.deadline(0));
  s.after_check(0, kT0, Verdict::kStopped, 0, std::nullopt);
  EXPECT_FALSE(s.deadline(0));
}

}  // namespace
