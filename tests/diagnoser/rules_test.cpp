#include "trading_heal/diagnoser/rules.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace trading_heal::diagnoser {
namespace {

using proto::DiagnosisAction;
using proto::Severity;

struct Row {
  std::vector<std::string> lines;
  std::string category;
  Severity severity;
  std::string cause_part;
};

class RulesTable : public ::testing::TestWithParam<Row> {};

TEST_P(RulesTable, Classifies) {
  const Row& r = GetParam();
  std::vector<std::string> lines = {"2026-07-16T15:40:11Z crypto-agent-BTC_USDT[42]: ✅ Agent started"};
  lines.insert(lines.end(), r.lines.begin(), r.lines.end());
  const RuleMatch m = classify(lines, {proto::Verdict::kStalled, 700.0});
  EXPECT_EQ(m.category, r.category);
  EXPECT_EQ(m.severity, r.severity);
  EXPECT_NE(m.cause.find(r.cause_part), std::string::npos) << m.cause;
  EXPECT_TRUE(m.matched());
}

TEST(Rules, AnOlderIncidentDoesNotOutrankTheCurrentOne) {
  // Connection refused while the database was down, long ago; now the agent stalls on a lock.
  std::vector<std::string> lines(5, "❌ Loop error: could not connect to server: Connection refused");
  lines.push_back("✅ Agent started");
  for (int i = 0; i < 10; ++i) {
    lines.push_back("⚠️ Price unavailable (timeout)");
    lines.push_back("❌ Loop error: psycopg2.OperationalError: canceling statement due to lock timeout");
  }
  EXPECT_EQ(classify(lines, {proto::Verdict::kStalled, 700.0}).category, "db_lock");
  // And the other way round: a deadlock long ago does not hide today's refused connections.
  std::vector<std::string> other(3, "psycopg2.errors.DeadlockDetected: deadlock detected");
  for (int i = 0; i < 9; ++i) other.push_back("❌ Loop error: could not connect to server: Connection refused");
  EXPECT_EQ(classify(other, {proto::Verdict::kStalled, 700.0}).category, "connection_refused");
}

TEST(Rules, TheCurrentRunOutranksThePreviousOne) {
  // Refused connections before the agent's restart; since then one lock timeout.
  std::vector<std::string> lines(6, "❌ Loop error: could not connect to server: Connection refused");
  lines.push_back("INFO | 🤖 Agent initialized: BTC-USDT (dry_run=False, profile=default)");
  lines.push_back("INFO | 🔄 Starting bootstrap sequence...");
  lines.push_back("❌ Loop error: psycopg2.OperationalError: canceling statement due to lock timeout");
  EXPECT_EQ(classify(lines, {proto::Verdict::kStalled, 700.0}).category, "db_lock");
  // A crash loop: the current run has logged nothing yet, so the previous run's traceback counts.
  std::vector<std::string> crash{"Traceback (most recent call last):",
                                 "  File \"trading_agent.py\", line 42, in <module>",
                                 "KeyError: 'close'", "INFO | 🤖 Agent initialized: BTC-USDT"};
  EXPECT_EQ(classify(crash, {proto::Verdict::kDown, std::nullopt}).category, "crash");
}

INSTANTIATE_TEST_SUITE_P(
    KnownCauses, RulesTable,
    ::testing::Values(
        Row{{"❌ Loop error: psycopg2.OperationalError: canceling statement due to lock timeout"},
            "db_lock", Severity::kHigh, "DB lock"},
        // The simulator's stall: an API timeout and a DB lock; the lock is the better cause.
        Row{{"⚠️ Price unavailable (timeout)",
             "❌ Loop error: psycopg2.OperationalError: canceling statement due to lock timeout",
             "⚠️ Price unavailable (timeout)"},
            "db_lock", Severity::kHigh, "DB lock"},
        Row{{"psycopg2.errors.DeadlockDetected: deadlock detected"}, "deadlock", Severity::kHigh,
            "deadlock"},
        Row{{"psycopg2.errors.LockNotAvailable: could not obtain lock on row"}, "deadlock",
            Severity::kHigh, "deadlock"},
        Row{{"❌ Loop error: could not connect to server: Connection refused"},
            "connection_refused", Severity::kHigh, "Connection refused"},
        Row{{"2026-07-16 15:40:11,022 | WARNING | ⚠️ Price unavailable (timeout)"},
            "api_timeout", Severity::kMedium, "API timeout"},
        Row{{"urllib.error.URLError: <urlopen error timed out>"}, "api_timeout",
            Severity::kMedium, "API timeout"},
        Row{{"ccxt.RateLimitExceeded: kucoin 429 Too Many Requests"}, "rate_limit",
            Severity::kMedium, "429"},
        Row{{"WARNING | thread stall detected in order loop"}, "thread_stall", Severity::kMedium,
            "stall"},
        Row{{"WARNING | lock contention on market_state, waiting for lock"}, "thread_stall",
            Severity::kMedium, "contention"},
        Row{{"crypto-agent@BTC_USDT.service: Failed with result 'oom-kill'."}, "oom",
            Severity::kCritical, "Out of memory"},
        Row{{"MemoryError"}, "oom", Severity::kCritical, "memory"},
        Row{{"Out of memory: Killed process 4242 (python3)"}, "oom", Severity::kCritical,
            "OOM"},
        Row{{"💥 Unhandled exception in trading loop", "Traceback (most recent call last):",
             "  File \"/opt/crypto-agent/trading_agent.py\", line 812, in <module>", "    main()",
             "KeyError: 'close'"},
            "crash", Severity::kHigh, "KeyError: 'close'"},
        Row{{"Traceback (most recent call last):", "  File \"x.py\", line 1, in f",
             "ZeroDivisionError: division by zero"},
            "crash", Severity::kHigh, "ZeroDivisionError"},
        Row{{"OSError: [Errno 28] No space left on device"}, "disk_full", Severity::kCritical,
            "Disk full"}));

TEST(Rules, CrashCauseNamesTheException) {
  const auto m = classify({"Traceback (most recent call last):", "  File \"a.py\", line 3",
                           "ValueError: bad candle"},
                          {});
  EXPECT_EQ(m.cause, "Python crash: ValueError: bad candle");
  EXPECT_EQ(m.action, DiagnosisAction::kAutoRestart);
}

TEST(Rules, PricesDoNotLookLikeRateLimits) {
  const auto m = classify({"📍 BUY signal @ $64,429.10 (71.0%) - rsi_oversold"},
                          {proto::Verdict::kStalled, 1500.0});
  EXPECT_EQ(m.category, "stall");
  EXPECT_FALSE(m.matched());
  EXPECT_NE(m.cause.find("1500s"), std::string::npos) << m.cause;
}

TEST(Rules, FallbacksFollowTheVerdict) {
  EXPECT_EQ(classify({}, {proto::Verdict::kDown, std::nullopt}).category, "down");
  EXPECT_EQ(classify({}, {proto::Verdict::kUnknown, std::nullopt}).category, "unknown");
  EXPECT_EQ(classify({"all fine"}, {proto::Verdict::kStalled, std::nullopt}).category, "stall");
}

TEST(Rules, EvidenceIsTheNewestMatchingLine) {
  const auto m = classify({"Connection refused (1)", "ok", "Connection refused (2)", "ok"}, {});
  EXPECT_EQ(m.evidence, "Connection refused (2)");
}

TEST(Rules, PythonExceptionNeedsATraceback) {
  EXPECT_EQ(python_exception({"psycopg2.OperationalError: lock timeout"}), "");
  EXPECT_EQ(python_exception({"Traceback (most recent call last):", "KeyError"}), "KeyError");
}

}  // namespace
}  // namespace trading_heal::diagnoser
