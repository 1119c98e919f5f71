// Cache, fingerprint, trigger, scheduler and the decide step.
#include <gtest/gtest.h>

#include "trading_heal/diagnoser/cache.hpp"
#include "trading_heal/diagnoser/pipeline.hpp"
#include "trading_heal/diagnoser/scheduler.hpp"
#include "trading_heal/diagnoser/trigger.hpp"

namespace trading_heal::diagnoser {
namespace {

using namespace std::chrono_literals;

TEST(Fingerprint, NumbersTimesAndIdsDoNotMatter) {
  const std::vector<std::string> a = {
      "2026-07-16T15:40:11Z crypto-agent-BTC_USDT[4242]: ⚠️ Price unavailable (timeout)",
      "2026-07-16T15:40:11Z crypto-agent-BTC_USDT[4242]: 📊 Cycle 12 | $64,733.10",
      "2026-07-16T15:40:12Z crypto-agent-BTC_USDT[4242]: ❌ Loop error: lock timeout id=deadbeef01"};
  const std::vector<std::string> b = {
      "2026-07-16T16:02:59Z crypto-agent-BTC_USDT[5151]: ❌ Loop error: lock timeout id=cafe0001ff",
      "2026-07-16T16:03:00Z crypto-agent-BTC_USDT[5151]: 📊 Cycle 99 | $64,001.00",
      "2026-07-16T16:03:00Z crypto-agent-BTC_USDT[5151]: ⚠️ Price unavailable (timeout)",
      "2026-07-16T16:03:01Z crypto-agent-BTC_USDT[5151]: ⚠️ Price unavailable (timeout)"};
  EXPECT_EQ(fingerprint("db_lock", a), fingerprint("db_lock", b));
  EXPECT_NE(fingerprint("db_lock", a), fingerprint("api_timeout", a));
  EXPECT_NE(fingerprint("db_lock", a),
            fingerprint("db_lock", {"❌ Loop error: Connection refused"}));
  EXPECT_EQ(fingerprint("x", a).size(), 16U);
  EXPECT_EQ(normalize_line("pid 4242 at 15:40:11 id 0123abcd ok"), "pid # at #:#:# id # ok");
}

TEST(Cache, ReusesWithinTtlOnly) {
  DiagnosisCache cache(1h);
  const common::MonoTime t0{std::chrono::hours(1000)};
  proto::Diagnosis d;
  d.cause = "DB lock";
  EXPECT_FALSE(cache.get("fp", t0));
  cache.put("fp", d, t0);
  auto hit = cache.get("fp", t0 + 59min);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->cause, "DB lock");
  EXPECT_FALSE(cache.get("fp", t0 + 61min));
  EXPECT_FALSE(cache.get("other", t0));
  EXPECT_EQ(cache.hits(), 1U);
  EXPECT_EQ(cache.misses(), 3U);
}

TEST(Cache, ZeroTtlDisablesAndSizeIsBounded) {
  const common::MonoTime t0{};
  DiagnosisCache off(0ms);
  off.put("fp", {}, t0);
  EXPECT_FALSE(off.get("fp", t0));
  DiagnosisCache small(1h, 2);
  small.put("a", {}, t0);
  small.put("b", {}, t0 + 1s);
  small.put("c", {}, t0 + 2s);
  EXPECT_EQ(small.size(), 2U);
  EXPECT_FALSE(small.get("a", t0 + 3s));
  EXPECT_TRUE(small.get("c", t0 + 3s));
}

proto::HealthReport report(const std::string& agent, proto::Verdict v, std::uint32_t n) {
  proto::HealthReport r;
  r.agent = agent;
  r.verdict = v;
  r.consecutive_failures = n;
  return r;
}

TEST(Trigger, OncePerIncidentResetWhenHealthy) {
  using proto::Verdict;
  Trigger t(2);
  EXPECT_FALSE(t.on_report(report("BTC_USDT", Verdict::kStalled, 1)));
  EXPECT_TRUE(t.on_report(report("BTC_USDT", Verdict::kStalled, 2)));
  EXPECT_FALSE(t.on_report(report("BTC_USDT", Verdict::kStalled, 3)));
  EXPECT_FALSE(t.on_report(report("BTC_USDT", Verdict::kDown, 4)));
  EXPECT_FALSE(t.on_report(report("BTC_USDT", Verdict::kUnknown, 4)));
  EXPECT_TRUE(t.on_report(report("ETH_USDT", Verdict::kDown, 2)));  // agents are independent
  EXPECT_FALSE(t.on_report(report("BTC_USDT", Verdict::kHealthy, 0)));
  EXPECT_FALSE(t.fired("BTC_USDT"));
  EXPECT_FALSE(t.on_report(report("BTC_USDT", Verdict::kStalled, 1)));
  EXPECT_TRUE(t.on_report(report("BTC_USDT", Verdict::kStalled, 2)));
}

TEST(Trigger, MidIncidentStartAndNonFailures) {
  using proto::Verdict;
  Trigger t(2);
  EXPECT_TRUE(t.on_report(report("A", Verdict::kStalled, 5)));  // diagnoser started late
  EXPECT_FALSE(t.on_report(report("B", Verdict::kUnknown, 3)));
  EXPECT_FALSE(t.on_report(report("C", Verdict::kStopped, 3)));
}

Job job(const std::string& agent) {
  Job j;
  j.context.agent = agent;
  return j;
}

TEST(Scheduler, OnePerAgentBoundedQueueBoundedWorkers) {
  Scheduler s({.workers = 2, .queue_capacity = 3});
  EXPECT_EQ(s.submit(job("A")), Scheduler::Admit::kQueued);
  EXPECT_EQ(s.submit(job("A")), Scheduler::Admit::kDuplicate);
  EXPECT_EQ(s.submit(job("B")), Scheduler::Admit::kQueued);
  EXPECT_EQ(s.submit(job("C")), Scheduler::Admit::kQueued);
  EXPECT_EQ(s.submit(job("D")), Scheduler::Admit::kQueueFull);
  EXPECT_EQ(s.next()->context.agent, "A");
  EXPECT_EQ(s.next()->context.agent, "B");
  EXPECT_FALSE(s.next());                                       // both workers busy
  EXPECT_EQ(s.submit(job("A")), Scheduler::Admit::kDuplicate);  // in flight
  EXPECT_EQ(s.in_flight(), 2U);
  s.done("A");
  EXPECT_EQ(s.next()->context.agent, "C");
  EXPECT_FALSE(s.next());
  EXPECT_EQ(s.submit(job("A")), Scheduler::Admit::kQueued);
}

Prepared prepared() {
  IncidentContext c;
  c.agent = "BTC_USDT";
  c.verdict = proto::Verdict::kStalled;
  return prepare(c, {"❌ Loop error: psycopg2.OperationalError: lock timeout"});
}

TEST(Decide, LlmAnswerAnnotatesRulesStandIn) {
  const Prepared p = prepared();
  const auto rules = decide(p, nullptr, "m", "inc", 65536);
  EXPECT_EQ(rules.diagnosis.source, "rules");
  EXPECT_EQ(rules.diagnosis.category, "db_lock");
  EXPECT_FALSE(rules.llm_error);

  LlmCall ok{std::string(R"({"cause":"Lock held by a vacuum","severity":"critical",)"
                         R"("action":"wait","explanation":"e"})"),
             7.5,
             {}};
  const auto llm = decide(p, &ok, "qwen", "inc", 65536);
  EXPECT_EQ(llm.diagnosis.source, "llm");
  EXPECT_EQ(llm.diagnosis.cause, "Lock held by a vacuum");
  EXPECT_EQ(llm.diagnosis.category, "db_lock");
  EXPECT_EQ(llm.diagnosis.agent, "BTC_USDT");
  EXPECT_EQ(llm.diagnosis.action, proto::DiagnosisAction::kWait);
  EXPECT_DOUBLE_EQ(llm.diagnosis.latency_seconds, 7.5);
  EXPECT_FALSE(llm.diagnosis.llm_error);

  LlmCall timeout{tl::unexpected(LlmError{"timeout", "after 2000 ms"}), 2.0, {}};
  const auto t = decide(p, &timeout, "qwen", "inc", 65536);
  EXPECT_EQ(t.diagnosis.source, "rules");
  EXPECT_EQ(t.diagnosis.llm_error, "timeout");
  ASSERT_TRUE(t.llm_error);

  LlmCall injected{std::string(R"({"cause":"x","severity":"high","action":"restart sshd.service",)"
                               R"("explanation":"e"})"),
                   1.0,
                   {}};
  const auto i = decide(p, &injected, "qwen", "inc", 65536);
  EXPECT_EQ(i.diagnosis.source, "rules");
  EXPECT_EQ(i.diagnosis.llm_error, "schema");
  EXPECT_EQ(i.diagnosis.action, proto::DiagnosisAction::kAutoRestart);
}

}  // namespace
}  // namespace trading_heal::diagnoser
