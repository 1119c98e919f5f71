// The actuator's incident state machine, limits and correlation, driven with explicit times.
#include "trading_heal/actuator/engine.hpp"

#include <gtest/gtest.h>

#include <map>

namespace trading_heal::actuator {
namespace {

using namespace std::chrono_literals;
using proto::Verdict;

common::Config config(std::map<std::string, std::string> env = {}) {
  env.emplace("TRADING_HEAL_AGENTS", "BTC_USDT,ETH_USDT,XRP_USDT,SOL_USDT,DOGE_USDT,ADA_USDT");
  auto c = common::load_config([&](const std::string& k) -> std::optional<std::string> {
    auto it = env.find(k);
    if (it == env.end()) return std::nullopt;
    return it->second;
  });
  EXPECT_TRUE(c.has_value());
  return *c;
}

std::vector<RestartDecision> restarts(const Decisions& ds) {
  std::vector<RestartDecision> out;
  for (const auto& d : ds) {
    if (auto* r = std::get_if<RestartDecision>(&d)) out.push_back(*r);
  }
  return out;
}

std::vector<proto::Event> events(const Decisions& ds, const std::string& action) {
  std::vector<proto::Event> out;
  for (const auto& d : ds) {
    if (auto* e = std::get_if<proto::Event>(&d); e != nullptr && e->action == action) {
      out.push_back(*e);
    }
  }
  return out;
}

void append(Decisions& acc, Decisions more) {
  for (auto& d : more) acc.push_back(std::move(d));
}

class EngineTest : public ::testing::Test {
 protected:
  void make(std::map<std::string, std::string> env = {}) {
    env.emplace("TRADING_HEAL_INTERVAL", "30");
    env.emplace("TRADING_HEAL_DIAGNOSIS_WAIT", "35");
    env.emplace("TRADING_HEAL_RECOVERY_GRACE", "120");
    cfg_ = config(env);
    engine_ = std::make_unique<Engine>(cfg_.agents, Policy::from_config(cfg_), 42);
  }
  void SetUp() override { make(); }

  Now at(std::chrono::milliseconds d) const {
    return Now{t0_ + d, common::WallTime(std::chrono::seconds(1785000000)) + d};
  }

  static proto::HealthReport report(const std::string& agent, Verdict v, std::uint32_t n,
                                    std::optional<double> age = 1500) {
    proto::HealthReport r;
    r.agent = agent;
    r.unit = "crypto-agent@" + agent + ".service";
    r.verdict = v;
    r.consecutive_failures = n;
    r.decision_age_seconds = age;
    r.active_state = v == Verdict::kDown ? "failed" : "active";
    r.sub_state = v == Verdict::kDown ? "failed" : "running";
    r.main_pid = 100;
    return r;
  }
  Decisions fail(const std::string& agent, std::uint32_t n, std::chrono::milliseconds t,
                 Verdict v = Verdict::kStalled) {
    return engine_->on_health(report(agent, v, n), at(t));
  }
  Decisions healthy(const std::string& agent, std::chrono::milliseconds t) {
    return engine_->on_health(report(agent, Verdict::kHealthy, 0, 3), at(t));
  }
  Decisions done(const std::string& agent, std::chrono::milliseconds t,
                 Outcome o = Outcome::kRestarted) {
    RestartResult r;
    r.agent = agent;
    r.outcome = o;
    r.new_pid = 200;
    r.detail = o == Outcome::kRestarted ? "active with new MainPID" : "hook failed";
    return engine_->on_restart_result(r, at(t));
  }
  // Fails `agent` twice from `t` on with no wait for a diagnosis, returns everything decided.
  Decisions incident(const std::string& agent, std::chrono::milliseconds t) {
    Decisions all;
    append(all, fail(agent, 1, t));
    append(all, fail(agent, 2, t + 30s));
    append(all, engine_->on_tick(at(t + 30s + 35s)));
    return all;
  }
  // A full incident that ends healthy after a successful restart.
  void restart_cycle(const std::string& agent, std::chrono::milliseconds t) {
    auto ds = incident(agent, t);
    ASSERT_EQ(restarts(ds).size(), 1U) << "at " << t.count() << " ms";
    done(agent, t + 66s);
    healthy(agent, t + 90s);
  }

  MonoTime t0_{std::chrono::hours(1000)};
  common::Config cfg_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineTest, OneFailureIsNotEnough) {
  EXPECT_TRUE(restarts(fail("BTC_USDT", 1, 0s)).empty());
  EXPECT_EQ(engine_->agent("BTC_USDT")->phase, Phase::kFailing);
  EXPECT_TRUE(restarts(engine_->on_tick(at(10min))).empty());
}

// The diagnosis is asked at the first failed check: the restart waits for it until
// diagnosis_wait (35 s here) after that check, however soon the failure is confirmed.
TEST_F(EngineTest, WaitsForTheDiagnosisAtMostTheDeadlineThenRestartsWithout) {
  fail("BTC_USDT", 1, 0s);
  EXPECT_TRUE(restarts(fail("BTC_USDT", 2, 2s)).empty());  // confirmed 2 s later
  EXPECT_EQ(engine_->agent("BTC_USDT")->phase, Phase::kDiagnosing);
  EXPECT_EQ(engine_->next_deadline(at(2s)), at(35s).mono);
  EXPECT_TRUE(restarts(engine_->on_tick(at(34s))).empty());
  auto rs = restarts(engine_->on_tick(at(35s)));
  ASSERT_EQ(rs.size(), 1U);
  EXPECT_EQ(rs[0].unit, "crypto-agent@BTC_USDT.service");
  EXPECT_FALSE(rs[0].diagnosis);
  EXPECT_EQ(rs[0].log_line,
            "SELF-HEAL: restarting BTC-USDT | reason: stalled (age=1500s) | Ollama: unavailable");
}

// Confirmed after the wait already ran out (a slow confirmation): restarted at once.
TEST_F(EngineTest, ConfirmationAfterTheDiagnosisWaitRestartsAtOnce) {
  fail("BTC_USDT", 1, 0s);
  auto rs = restarts(fail("BTC_USDT", 2, 40s));
  ASSERT_EQ(rs.size(), 1U);
  EXPECT_FALSE(rs[0].diagnosis);
}

TEST_F(EngineTest, DiagnosisArrivingDuringTheWaitRestartsAtOnceWithIt) {
  fail("BTC_USDT", 1, 0s);
  fail("BTC_USDT", 2, 2s);
  proto::Diagnosis d;
  d.agent = "BTC_USDT";
  d.cause = "DB lock on decisions table";
  auto rs = restarts(engine_->on_diagnosis(d, at(10s)));
  ASSERT_EQ(rs.size(), 1U);
  EXPECT_EQ(rs[0].log_line,
            "SELF-HEAL: restarting BTC-USDT | reason: stalled (age=1500s) | Ollama: DB lock on "
            "decisions table");
  EXPECT_EQ(rs[0].diagnosis, "DB lock on decisions table");
}

TEST_F(EngineTest, DiagnosisArrivingBeforeTheThresholdIsUsedWithoutWaiting) {
  fail("BTC_USDT", 1, 0s);
  proto::Diagnosis d;
  d.agent = "BTC_USDT";
  d.cause = "API timeout";
  EXPECT_TRUE(restarts(engine_->on_diagnosis(d, at(10s))).empty());
  auto rs = restarts(fail("BTC_USDT", 2, 30s));
  ASSERT_EQ(rs.size(), 1U);
  EXPECT_EQ(rs[0].diagnosis, "API timeout");
}

TEST_F(EngineTest, DiagnosisArrivingAfterTheRestartOnlyAnnotates) {
  auto rs = restarts(incident("BTC_USDT", 0s));
  ASSERT_EQ(rs.size(), 1U);
  proto::Diagnosis d;
  d.agent = "BTC_USDT";
  d.cause = "late";
  d.source = "llm";
  const std::string incident = engine_->agent("BTC_USDT")->incident;
  auto ds = engine_->on_diagnosis(d, at(70s));
  EXPECT_TRUE(restarts(ds).empty());
  EXPECT_EQ(engine_->agent("BTC_USDT")->diagnosis, "late");
  // Audited against the incident whose restart went without it.
  auto ev = events(ds, "diagnosis_after_restart");
  ASSERT_EQ(ev.size(), 1U);
  EXPECT_EQ(ev[0].diagnosis, "late");
  EXPECT_EQ(std::get<std::string>(ev[0].fields.at("incident")), incident);
  EXPECT_EQ(engine_->agent("BTC_USDT")->last_diagnosis, "late");
}

TEST_F(EngineTest, RestartResultStartsRecoveryAndHealthyEmitsRecovered) {
  incident("BTC_USDT", 0s);
  auto ev = events(done("BTC_USDT", 66s), "restart");
  ASSERT_EQ(ev.size(), 1U);
  EXPECT_EQ(ev[0].symbol, "BTC-USDT");
  EXPECT_EQ(ev[0].reason, "stalled (age=1500s)");
  EXPECT_EQ(std::get<bool>(ev[0].fields.at("dry_run")), false);
  EXPECT_EQ(engine_->agent("BTC_USDT")->phase, Phase::kRecovering);
  // Still failing during the grace period: nothing new.
  EXPECT_TRUE(restarts(fail("BTC_USDT", 3, 90s)).empty());
  auto rec = events(healthy("BTC_USDT", 120s), "recovered");
  ASSERT_EQ(rec.size(), 1U);
  EXPECT_DOUBLE_EQ(std::get<double>(rec[0].fields.at("seconds_to_healthy")), 120.0);
  EXPECT_EQ(engine_->agent("BTC_USDT")->phase, Phase::kHealthy);
}

TEST_F(EngineTest, BootstrappingIsNotRecoveredUntilTheAgentDecidesAgain) {
  auto ds = incident("BTC_USDT", 0s);  // restart decided at 65 s
  ASSERT_EQ(restarts(ds).size(), 1U);
  done("BTC_USDT", 66s);
  // HEALTHY by the probe's startup grace, but its newest decision predates the restart.
  ds = engine_->on_health(report("BTC_USDT", Verdict::kHealthy, 0, 40), at(75s));
  EXPECT_TRUE(events(ds, "recovered").empty());
  EXPECT_EQ(engine_->agent("BTC_USDT")->phase, Phase::kRecovering);
  ds = engine_->on_health(report("BTC_USDT", Verdict::kHealthy, 0, 2), at(80s));
  ASSERT_EQ(events(ds, "recovered").size(), 1U);
  EXPECT_EQ(engine_->agent("BTC_USDT")->phase, Phase::kHealthy);
}

// The probe may read the unit between the restart's stop and start (inactive) and its report
// arrive after the restart was verified: the unit last became active before the restart, so it
// is stale and the incident goes on to its `recovered`. A stop after the restart's own start
// (an operator's) still ends the incident.
TEST_F(EngineTest, AStoppedReportReadDuringTheRestartDoesNotEndTheIncident) {
  const auto epoch = [this](std::chrono::milliseconds t) {
    return std::chrono::duration<double>(at(t).wall.time_since_epoch()).count();
  };
  auto stopped = report("BTC_USDT", Verdict::kStopped, 0);
  stopped.active_state = "inactive";
  stopped.sub_state = "dead";
  stopped.main_pid = 0;
  ASSERT_EQ(restarts(incident("BTC_USDT", 0s)).size(), 1U);  // decided at 65 s
  done("BTC_USDT", 66s);
  stopped.active_enter_ts = epoch(-3600s);  // the old run's start
  auto ds = engine_->on_health(stopped, at(66s));
  EXPECT_TRUE(events(ds, "recovered").empty());
  EXPECT_EQ(engine_->agent("BTC_USDT")->phase, Phase::kRecovering);
  ASSERT_EQ(events(healthy("BTC_USDT", 80s), "recovered").size(), 1U);
  EXPECT_EQ(engine_->agent("BTC_USDT")->phase, Phase::kHealthy);

  ASSERT_EQ(restarts(incident("BTC_USDT", 1h)).size(), 1U);
  done("BTC_USDT", 1h + 66s);
  stopped.active_enter_ts = epoch(1h + 65s + 300ms);  // the restart's start
  engine_->on_health(stopped, at(1h + 70s));
  EXPECT_EQ(engine_->agent("BTC_USDT")->phase, Phase::kStopped);
}

TEST_F(EngineTest, WithAutoThresholdsTheRecoveryGraceAllowsTheLongestAnAgentMayLearn) {
  make({{"TRADING_HEAL_INTERVAL", "1"},
        {"TRADING_HEAL_STALL_THRESHOLD", "auto"},
        {"TRADING_HEAL_STALL_THRESHOLD_MIN", "5"},
        {"TRADING_HEAL_STALL_THRESHOLD_MAX", "700"},
        {"TRADING_HEAL_STARTUP_GRACE", "20"},
        {"TRADING_HEAL_RECOVERY_GRACE", "0"}});
  // Two intervals plus the longer of MAX (not the 600 s fallback) and the startup grace.
  EXPECT_EQ(Policy::from_config(cfg_).recovery_grace, 702s);
}

TEST_F(EngineTest, RestartedAgentThatNeverDecidesIsIneffectiveAfterTheRecoveryGrace) {
  make({{"TRADING_HEAL_INTERVAL", "1"},
        {"TRADING_HEAL_STALL_THRESHOLD", "5"},
        {"TRADING_HEAL_STARTUP_GRACE", "20"},
        {"TRADING_HEAL_DIAGNOSIS_WAIT", "0"},
        {"TRADING_HEAL_RECOVERY_GRACE", "0"}});
  // Derived: two intervals plus the longer of threshold and startup grace.
  EXPECT_EQ(Policy::from_config(cfg_).recovery_grace, 22s);
  ASSERT_EQ(restarts(fail("BTC_USDT", 2, 0s)).size(), 1U);
  done("BTC_USDT", 1s);
  Decisions all;
  for (int s = 2; s <= 23; ++s) {
    append(all, engine_->on_health(report("BTC_USDT", Verdict::kHealthy, 0, 10.0 + s),
                                   at(std::chrono::seconds(s))));
    append(all, engine_->on_tick(at(std::chrono::seconds(s) + 500ms)));
  }
  EXPECT_TRUE(events(all, "recovered").empty());
  EXPECT_EQ(events(all, "restart_ineffective").size(), 1U);
}

TEST_F(EngineTest, CooldownBlocksASecondRestartThenAllowsIt) {
  make({{"TRADING_HEAL_DIAGNOSIS_WAIT", "0"}});
  ASSERT_EQ(restarts(fail("BTC_USDT", 2, 0s)).size(), 1U);
  done("BTC_USDT", 1s);
  healthy("BTC_USDT", 10s);
  auto ds = fail("BTC_USDT", 2, 20s);
  EXPECT_TRUE(restarts(ds).empty());
  auto rl = events(ds, "rate_limited");
  ASSERT_EQ(rl.size(), 1U);
  EXPECT_EQ(std::get<std::string>(rl[0].fields.at("limit")), "cooldown");
  // Once per blocked incident, not once per cycle.
  EXPECT_TRUE(events(fail("BTC_USDT", 3, 50s), "rate_limited").empty());
  EXPECT_EQ(engine_->next_deadline(at(50s)), at(60s).mono);
  EXPECT_EQ(restarts(engine_->on_tick(at(60s))).size(), 1U);
}

TEST_F(EngineTest, SlidingHourThreeRestartsIn59MinutesFourthRateLimitedAllowedAt61) {
  restart_cycle("BTC_USDT", 0min);
  restart_cycle("BTC_USDT", 20min);
  restart_cycle("BTC_USDT", 40min);
  // Fourth incident: its restart would come at t0 + 59 min.
  fail("BTC_USDT", 1, 58min);
  fail("BTC_USDT", 2, 58min + 25s);
  auto ds = engine_->on_tick(at(59min));
  EXPECT_TRUE(restarts(ds).empty());
  auto rl = events(ds, "rate_limited");
  ASSERT_EQ(rl.size(), 1U);
  EXPECT_EQ(std::get<std::string>(rl[0].fields.at("limit")), "max_restarts");
  EXPECT_EQ(engine_->restarts_in_window(*engine_->agent("BTC_USDT"), at(59min).mono), 3);
  // The first restart (t0 + 65 s) leaves the window at t0 + 61:05.
  fail("BTC_USDT", 3, 60min);
  fail("BTC_USDT", 4, 60min + 30s);
  EXPECT_TRUE(restarts(engine_->on_tick(at(60min + 50s))).empty());
  auto rs = restarts(fail("BTC_USDT", 5, 61min + 10s));
  EXPECT_EQ(rs.size(), 1U);
  // A 62-minute-old restart no longer counts, and no second rate_limited event came.
  EXPECT_EQ(engine_->restarts_in_window(*engine_->agent("BTC_USDT"), at(61min + 10s).mono), 3);
}

TEST_F(EngineTest, ExhaustedAfterSixConsecutiveFailuresUntilHealthy) {
  make({{"TRADING_HEAL_DIAGNOSIS_WAIT", "0"}});
  Decisions all;
  for (std::uint32_t n = 1; n <= 8; ++n) {
    append(all, fail("BTC_USDT", n, n * 30s));
    if (n == 2) done("BTC_USDT", 61s);
    append(all, engine_->on_tick(at(n * 30s + 1s)));
  }
  EXPECT_EQ(restarts(all).size(), 1U);
  // One restart at failure 2, grace of 120 s passes at failure 6 ... exhausted, one event.
  EXPECT_EQ(events(all, "exhausted").size(), 1U);
  EXPECT_EQ(engine_->agent("BTC_USDT")->phase, Phase::kExhausted);
  EXPECT_TRUE(restarts(fail("BTC_USDT", 9, 31min)).empty());
  healthy("BTC_USDT", 32min);
  EXPECT_EQ(engine_->agent("BTC_USDT")->phase, Phase::kHealthy);
}

TEST_F(EngineTest, RateLimitedAgentThatStaysBrokenIsThenExhausted) {
  restart_cycle("BTC_USDT", 0min);
  restart_cycle("BTC_USDT", 10min);
  restart_cycle("BTC_USDT", 20min);
  Decisions all;
  for (std::uint32_t n = 1; n <= 7; ++n) {
    append(all, fail("BTC_USDT", n, 30min + n * 30s));
    append(all, engine_->on_tick(at(30min + n * 30s + 1s)));
  }
  EXPECT_TRUE(restarts(all).empty());
  ASSERT_EQ(events(all, "rate_limited").size(), 1U);
  ASSERT_EQ(events(all, "exhausted").size(), 1U);
  EXPECT_EQ(engine_->agent("BTC_USDT")->phase, Phase::kExhausted);
  // Exhausted stays exhausted when the hour's budget frees up: no restart until healthy.
  EXPECT_TRUE(restarts(fail("BTC_USDT", 8, 70min)).empty());
  EXPECT_TRUE(restarts(engine_->on_tick(at(71min))).empty());
}

TEST_F(EngineTest, HighCountWithoutAnyRestartIsRestartedNotExhausted) {
  // E.g. failures counted while the diagnosis was awaited: no restart has failed yet.
  auto ds = fail("BTC_USDT", 7, 0s);
  append(ds, engine_->on_tick(at(35s)));
  EXPECT_EQ(restarts(ds).size(), 1U);
  EXPECT_TRUE(events(ds, "exhausted").empty());
}

TEST_F(EngineTest, ExhaustedAtOnceWhenTheCountIsHighAfterARestartThisHour) {
  restart_cycle("BTC_USDT", 0min);
  auto ds = fail("BTC_USDT", 7, 10min);
  append(ds, engine_->on_tick(at(10min + 35s)));
  EXPECT_TRUE(restarts(ds).empty());
  EXPECT_EQ(events(ds, "exhausted").size(), 1U);
}

TEST_F(EngineTest, ResumeLiftsExhaustion) {
  restart_cycle("BTC_USDT", 0min);
  fail("BTC_USDT", 7, 10min);
  engine_->on_tick(at(10min + 35s));
  ASSERT_EQ(engine_->agent("BTC_USDT")->phase, Phase::kExhausted);
  proto::Command c;
  c.verb = proto::CommandVerb::kResume;
  c.agent = "BTC_USDT";
  auto res = engine_->on_command(c, at(10min + 40s));
  EXPECT_TRUE(res.ok);
  EXPECT_EQ(events(res.decisions, "resumed").size(), 1U);
  EXPECT_EQ(restarts(engine_->on_tick(at(10min + 41s))).size(), 1U);
}

TEST_F(EngineTest, IneffectiveRestartDoublesTheWaitAndStableHealthResetsIt) {
  make({{"TRADING_HEAL_DIAGNOSIS_WAIT", "0"}, {"TRADING_HEAL_EXHAUSTED_AFTER", "100"}});
  ASSERT_EQ(restarts(fail("BTC_USDT", 2, 0s)).size(), 1U);
  done("BTC_USDT", 1s);
  fail("BTC_USDT", 3, 100s);
  auto ds = engine_->on_tick(at(121s));  // grace (120 s) over, still failing
  auto ie = events(ds, "restart_ineffective");
  ASSERT_EQ(ie.size(), 1U);
  const auto* a = engine_->agent("BTC_USDT");
  EXPECT_EQ(a->backoff_level, 1);
  EXPECT_GE(a->backoff_wait, 120s);  // cooldown 60 s * 2
  EXPECT_LE(a->backoff_wait, 132s);  // + at most 10 % jitter
  EXPECT_EQ(std::get<std::string>(events(ds, "rate_limited").at(0).fields.at("limit")), "backoff");
  EXPECT_TRUE(restarts(fail("BTC_USDT", 4, 110s)).empty());
  EXPECT_EQ(restarts(engine_->on_tick(at(a->backoff_wait))).size(), 1U);
  done("BTC_USDT", 140s);
  healthy("BTC_USDT", 150s);
  EXPECT_EQ(engine_->agent("BTC_USDT")->backoff_level, 1);
  healthy("BTC_USDT", 150s + 10min);
  EXPECT_EQ(engine_->agent("BTC_USDT")->backoff_level, 0);
}

TEST_F(EngineTest, PausedAgentIsNeverRestartedAndResumeRestoresHealing) {
  proto::Command c;
  c.verb = proto::CommandVerb::kPause;
  c.agent = "BTC_USDT";
  c.reason = "maintenance";
  auto res = engine_->on_command(c, at(0s));
  ASSERT_TRUE(res.ok);
  auto pe = events(res.decisions, "paused");
  ASSERT_EQ(pe.size(), 1U);
  EXPECT_EQ(pe[0].reason, "maintenance");
  EXPECT_TRUE(restarts(incident("BTC_USDT", 1s)).empty());
  EXPECT_TRUE(restarts(fail("BTC_USDT", 3, 100s)).empty());
  c.verb = proto::CommandVerb::kResume;
  engine_->on_command(c, at(110s));
  EXPECT_EQ(restarts(engine_->on_tick(at(111s))).size(), 1U);
}

TEST_F(EngineTest, PauseWithExpiryEndsByItself) {
  proto::Command c;
  c.verb = proto::CommandVerb::kPause;
  c.agent = "ETH_USDT";
  c.until = common::to_epoch_seconds(at(10min).wall);
  ASSERT_TRUE(engine_->on_command(c, at(0s)).ok);
  EXPECT_EQ(engine_->next_deadline(at(0s)), at(10min).mono);
  EXPECT_TRUE(events(engine_->on_tick(at(9min)), "resumed").empty());
  EXPECT_EQ(events(engine_->on_tick(at(10min)), "resumed").size(), 1U);
  EXPECT_FALSE(engine_->agent("ETH_USDT")->paused);
  c.until = common::to_epoch_seconds(at(5min).wall);  // in the past
  EXPECT_FALSE(engine_->on_command(c, at(11min)).ok);
}

TEST_F(EngineTest, StoppedIsNeverRestarted) {
  fail("BTC_USDT", 1, 0s);
  engine_->on_health(report("BTC_USDT", Verdict::kStopped, 0), at(30s));
  EXPECT_TRUE(restarts(engine_->on_tick(at(5min))).empty());
  EXPECT_EQ(engine_->agent("BTC_USDT")->phase, Phase::kStopped);
}

TEST_F(EngineTest, UnknownNeverTriggers) {
  Decisions all;
  for (std::uint32_t n = 1; n <= 10; ++n) {
    append(all,
           engine_->on_health(report("BTC_USDT", Verdict::kUnknown, n, std::nullopt), at(n * 30s)));
    append(all, engine_->on_tick(at(n * 30s + 1s)));
  }
  EXPECT_TRUE(restarts(all).empty());
  // An UNKNOWN report during the diagnosis wait suspends the restart too.
  fail("ETH_USDT", 1, 0s);
  fail("ETH_USDT", 2, 30s);
  engine_->on_health(report("ETH_USDT", Verdict::kUnknown, 3, std::nullopt), at(60s));
  EXPECT_TRUE(restarts(engine_->on_tick(at(65s))).empty());
}

TEST_F(EngineTest, SystemdAutoRestartIsLeftToSystemd) {
  make({{"TRADING_HEAL_DIAGNOSIS_WAIT", "0"}});
  auto r = report("BTC_USDT", Verdict::kDown, 2);
  r.active_state = "activating";
  r.sub_state = "auto-restart";
  EXPECT_TRUE(restarts(engine_->on_health(r, at(0s))).empty());
  EXPECT_EQ(engine_->counters().left_to_systemd, 1U);
  // The loop is not asked to spin on a past deadline.
  EXPECT_GT(*engine_->next_deadline(at(0s)), at(0s).mono);
}

TEST_F(EngineTest, FailedUnitIsResetBeforeTheRestart) {
  make({{"TRADING_HEAL_DIAGNOSIS_WAIT", "0"}});
  auto r = report("BTC_USDT", Verdict::kDown, 2);
  r.result = "start-limit-hit";
  auto rs = restarts(engine_->on_health(r, at(0s)));
  ASSERT_EQ(rs.size(), 1U);
  EXPECT_TRUE(rs[0].reset_failed);
  EXPECT_EQ(rs[0].reason, "down (failed/failed)");
}

TEST_F(EngineTest, MessagesNamingUnknownAgentsAreRejectedAndCounted) {
  make({{"TRADING_HEAL_DIAGNOSIS_WAIT", "0"}});
  for (std::string bad : {"NOPE_USDT", "BTC_USDT.service sshd", "../x", "", "BTC_USDT "}) {
    auto r = report(bad, Verdict::kDown, 5);
    EXPECT_TRUE(engine_->on_health(r, at(0s)).empty()) << bad;
  }
  EXPECT_EQ(engine_->counters().rejected_unknown_agent, 5U);
  auto r = report("BTC_USDT", Verdict::kDown, 5);
  r.unit = "sshd.service";
  EXPECT_TRUE(engine_->on_health(r, at(0s)).empty());
  EXPECT_EQ(engine_->counters().rejected_unit_mismatch, 1U);
  proto::Diagnosis d;
  d.agent = "sshd";
  bool accepted = true;
  engine_->on_diagnosis(d, at(0s), &accepted);
  EXPECT_FALSE(accepted);
  proto::Command c;
  c.verb = proto::CommandVerb::kPause;
  c.agent = "../x";
  EXPECT_FALSE(engine_->on_command(c, at(0s)).ok);
}

TEST_F(EngineTest, DeferredRestartCostsNoBudget) {
  make({{"TRADING_HEAL_DIAGNOSIS_WAIT", "0"}, {"TRADING_HEAL_MAX_RESTARTS", "1"}});
  ASSERT_EQ(restarts(fail("BTC_USDT", 2, 0s)).size(), 1U);
  auto ds = done("BTC_USDT", 1s, Outcome::kDeferred);
  EXPECT_EQ(events(ds, "deferred").size(), 1U);
  EXPECT_EQ(engine_->restarts_in_window(*engine_->agent("BTC_USDT"), at(1s).mono), 0);
  EXPECT_TRUE(restarts(engine_->on_tick(at(30s))).empty());  // waits one cooldown
  EXPECT_EQ(restarts(fail("BTC_USDT", 3, 61s)).size(), 1U);
}

TEST_F(EngineTest, FailedRestartIsRetriedAfterTheCooldownWithinTheBudget) {
  make({{"TRADING_HEAL_DIAGNOSIS_WAIT", "0"}});
  ASSERT_EQ(restarts(fail("BTC_USDT", 2, 0s)).size(), 1U);
  EXPECT_EQ(events(done("BTC_USDT", 5s, Outcome::kFailed), "restart_failed").size(), 1U);
  EXPECT_TRUE(restarts(fail("BTC_USDT", 3, 30s)).empty());
  EXPECT_EQ(restarts(fail("BTC_USDT", 4, 65s)).size(), 1U);
  EXPECT_EQ(engine_->restarts_in_window(*engine_->agent("BTC_USDT"), at(65s).mono), 2);
}

TEST_F(EngineTest, FleetBudgetIsACircuitBreaker) {
  make({{"TRADING_HEAL_DIAGNOSIS_WAIT", "0"},
        {"TRADING_HEAL_FLEET_MAX_RESTARTS", "2"},
        {"TRADING_HEAL_GLOBAL_MIN_AGENTS", "10"}});
  EXPECT_EQ(restarts(fail("BTC_USDT", 2, 0s)).size(), 1U);
  EXPECT_EQ(restarts(fail("ETH_USDT", 2, 1s)).size(), 1U);
  auto ds = fail("XRP_USDT", 2, 2s);
  EXPECT_TRUE(restarts(ds).empty());
  EXPECT_EQ(std::get<std::string>(events(ds, "rate_limited").at(0).fields.at("limit")),
            "fleet_max_restarts");
}

class GlobalTest : public EngineTest {
 protected:
  void SetUp() override {
    make({{"TRADING_HEAL_DIAGNOSIS_WAIT", "0"}, {"TRADING_HEAL_EXHAUSTED_AFTER", "100"}});
  }
  // Four agents stall together; returns everything decided over two cycles.
  Decisions four_stall() {
    Decisions all;
    for (std::uint32_t n = 1; n <= 2; ++n) {
      for (const char* a : {"BTC_USDT", "ETH_USDT", "XRP_USDT", "SOL_USDT"}) {
        append(all, fail(a, n, n * 30s));
      }
    }
    return all;
  }
};

TEST_F(GlobalTest, FourAgentsTogetherAreOneIncidentWithOneCanary) {
  auto all = four_stall();
  auto g = events(all, "global_incident");
  ASSERT_EQ(g.size(), 1U);
  EXPECT_EQ(std::get<std::string>(g[0].fields.at("agents")), "BTC_USDT,ETH_USDT,XRP_USDT");
  auto rs = restarts(all);
  ASSERT_EQ(rs.size(), 1U);
  EXPECT_TRUE(rs[0].canary);
  EXPECT_EQ(engine_->global().canary, rs[0].agent);
  EXPECT_EQ(engine_->global().members.size(), 4U);
  // Further cycles restart nothing else while the canary is tested.
  Decisions more;
  for (const char* a : {"BTC_USDT", "ETH_USDT", "XRP_USDT", "SOL_USDT"}) {
    append(more, fail(a, 3, 90s));
  }
  append(more, engine_->on_tick(at(100s)));
  EXPECT_TRUE(restarts(more).empty());
  EXPECT_TRUE(events(more, "global_incident").empty());
}

TEST_F(GlobalTest, CanaryRecoversThenTheRestOneAtATime) {
  auto canary = restarts(four_stall()).at(0).agent;
  done(canary, 61s);
  auto ds = healthy(canary, 70s);
  EXPECT_EQ(events(ds, "recovered").size(), 1U);
  EXPECT_EQ(engine_->global().stage, GlobalIncident::Stage::kReleasing);
  auto first = restarts(ds);
  ASSERT_EQ(first.size(), 1U);
  EXPECT_NE(first[0].agent, canary);
  // Only one at a time: the others still wait.
  Decisions more;
  for (const char* a : {"BTC_USDT", "ETH_USDT", "XRP_USDT", "SOL_USDT"}) {
    if (a != canary) append(more, fail(a, 4, 80s));
  }
  EXPECT_TRUE(restarts(more).empty());
  done(first[0].agent, 85s);
  auto second = restarts(healthy(first[0].agent, 90s));
  ASSERT_EQ(second.size(), 1U);
  done(second[0].agent, 95s);
  auto third = restarts(healthy(second[0].agent, 100s));
  ASSERT_EQ(third.size(), 1U);
  done(third[0].agent, 105s);
  healthy(third[0].agent, 110s);
  EXPECT_FALSE(engine_->global().active);
}

TEST_F(GlobalTest, FailuresCountedWhileHeldDoNotExhaustTheReleasedAgents) {
  make({{"TRADING_HEAL_DIAGNOSIS_WAIT", "0"}, {"TRADING_HEAL_RECOVERY_GRACE", "600"}});
  auto canary = restarts(four_stall()).at(0).agent;
  done(canary, 61s);
  for (std::uint32_t n = 3; n <= 12; ++n) {
    for (const char* a : {"BTC_USDT", "ETH_USDT", "XRP_USDT", "SOL_USDT"}) {
      if (a != canary) fail(a, n, n * 30s);
    }
  }
  auto ds = healthy(canary, 400s);
  EXPECT_TRUE(events(ds, "exhausted").empty());
  EXPECT_EQ(restarts(ds).size(), 1U);
}

TEST_F(GlobalTest, CanaryThatDoesNotRecoverHoldsEverything) {
  auto canary = restarts(four_stall()).at(0).agent;
  done(canary, 61s);
  Decisions all;
  for (int cycle = 3; cycle < 12; ++cycle) {
    for (const char* a : {"BTC_USDT", "ETH_USDT", "XRP_USDT", "SOL_USDT"}) {
      append(all, fail(a, static_cast<std::uint32_t>(cycle), cycle * 30s));
    }
    append(all, engine_->on_tick(at(cycle * 30s + 1s)));
  }
  auto ie = events(all, "restart_ineffective");
  ASSERT_EQ(ie.size(), 1U);
  EXPECT_TRUE(std::get<bool>(ie[0].fields.at("escalated")));
  EXPECT_EQ(engine_->global().stage, GlobalIncident::Stage::kHeld);
  EXPECT_TRUE(restarts(all).empty());
  EXPECT_TRUE(events(all, "global_incident").empty());
}

TEST_F(GlobalTest, DatabaseUnreachableIsAGlobalIncident) {
  proto::Heartbeat hb;
  hb.component = "probe";
  hb.stats["db_reachable"] = false;
  auto ds = engine_->on_probe_heartbeat(hb, at(0s));
  auto g = events(ds, "global_incident");
  ASSERT_EQ(g.size(), 1U);
  EXPECT_EQ(std::get<std::string>(g[0].fields.at("cause")), "database_unreachable");
  EXPECT_EQ(restarts(fail("BTC_USDT", 2, 1s)).size(), 1U);
  EXPECT_TRUE(restarts(fail("ETH_USDT", 2, 2s)).empty());
  hb.stats["db_reachable"] = true;
  engine_->on_probe_heartbeat(hb, at(3s));
  EXPECT_TRUE(engine_->global().active);  // members still failing
}

TEST_F(GlobalTest, TwoAgentsAreNotAGlobalIncident) {
  EXPECT_EQ(restarts(fail("BTC_USDT", 2, 0s)).size(), 1U);
  EXPECT_EQ(restarts(fail("ETH_USDT", 2, 0s)).size(), 1U);
  EXPECT_FALSE(engine_->global().active);
}

TEST_F(EngineTest, PersistenceKeepsTheBudgetAcrossARestart) {
  restart_cycle("BTC_USDT", 0min);
  restart_cycle("BTC_USDT", 10min);
  restart_cycle("BTC_USDT", 20min);
  proto::Command c;
  c.verb = proto::CommandVerb::kPause;
  c.agent = "ETH_USDT";
  c.reason = "upgrade";
  engine_->on_command(c, at(21min));
  const std::string text = engine_->to_json(at(25min)).dump();

  // A new process: its monotonic clock differs, the wall clock goes on.
  Engine again(cfg_.agents, Policy::from_config(cfg_), 7);
  const MonoTime other{std::chrono::hours(5)};
  auto when = [&](std::chrono::milliseconds d) {
    return Now{other + d, common::WallTime(std::chrono::seconds(1785000000)) + d};
  };
  ASSERT_TRUE(again.load_json(nlohmann::json::parse(text), when(30min)));
  EXPECT_EQ(again.restarts_in_window(*again.agent("BTC_USDT"), when(30min).mono), 3);
  EXPECT_TRUE(again.agent("ETH_USDT")->paused);
  EXPECT_EQ(again.agent("ETH_USDT")->pause_reason, "upgrade");
  auto r = report("BTC_USDT", Verdict::kStalled, 1);
  again.on_health(r, when(59min));
  r.consecutive_failures = 2;
  again.on_health(r, when(59min + 30s));
  auto ds = again.on_tick(when(59min + 65s));
  EXPECT_TRUE(restarts(ds).empty());
  EXPECT_EQ(events(ds, "rate_limited").size(), 1U);
  // 61 min after the first restart (t0 + 65 s) a slot is free again.
  r.consecutive_failures = 3;
  EXPECT_EQ(restarts(again.on_health(r, when(61min + 10s))).size(), 1U);
}

TEST_F(EngineTest, PersistedRestartInFlightIsWatchedForRecovery) {
  incident("BTC_USDT", 0s);
  ASSERT_EQ(engine_->agent("BTC_USDT")->phase, Phase::kRestarting);
  auto j = engine_->to_json(at(66s));
  Engine again(cfg_.agents, Policy::from_config(cfg_));
  ASSERT_TRUE(again.load_json(j, at(70s)));
  EXPECT_EQ(again.agent("BTC_USDT")->phase, Phase::kRecovering);
  EXPECT_EQ(again.restarts_in_window(*again.agent("BTC_USDT"), at(70s).mono), 1);
}

TEST_F(EngineTest, PersistedRestartThatNeverHappenedIsIssuedAgainNotExhausted) {
  incident("BTC_USDT", 0s);  // decided at 65 s for MainPID 100, then we die
  auto j = engine_->to_json(at(66s));
  Engine again(cfg_.agents, Policy::from_config(cfg_));
  ASSERT_TRUE(again.load_json(j, at(70s)));
  // Still MainPID 100, still stalled, and many failures counted while we were away.
  auto ds = again.on_health(report("BTC_USDT", Verdict::kStalled, 9), at(80s));
  EXPECT_EQ(events(ds, "restart_interrupted").size(), 1U);
  EXPECT_TRUE(events(ds, "exhausted").empty());
  EXPECT_TRUE(events(ds, "rate_limited").empty()) << "no cooldown from a restart that never was";
  ASSERT_EQ(restarts(ds).size(), 1U);
  EXPECT_EQ(again.restarts_in_window(*again.agent("BTC_USDT"), at(80s).mono), 2)
      << "the interrupted attempt stays counted";
}

TEST_F(EngineTest, PersistedRestartThatHappenedIsRecoveredNormally) {
  incident("BTC_USDT", 0s);
  auto j = engine_->to_json(at(66s));
  Engine again(cfg_.agents, Policy::from_config(cfg_));
  ASSERT_TRUE(again.load_json(j, at(70s)));
  auto r = report("BTC_USDT", Verdict::kHealthy, 0, 1);
  r.main_pid = 200;
  auto ds = again.on_health(r, at(80s));
  EXPECT_TRUE(events(ds, "restart_interrupted").empty());
  EXPECT_EQ(events(ds, "recovered").size(), 1U);
}

TEST_F(EngineTest, CorruptStateIsRefusedAndChangesNothing) {
  restart_cycle("BTC_USDT", 0min);
  for (const char* bad :
       {R"({"version":1})", R"({"version":2,"agents":{},"global":null})",
        R"({"version":1,"agents":{"BTC_USDT":{"phase":"NAPPING"}},"global":null})", R"([1,2,3])",
        R"("x")"}) {
    EXPECT_FALSE(engine_->load_json(nlohmann::json::parse(bad), at(5min))) << bad;
  }
  EXPECT_EQ(engine_->restarts_in_window(*engine_->agent("BTC_USDT"), at(5min).mono), 1);
}

TEST_F(EngineTest, StatusAndAgentStateCarryTheState) {
  incident("BTC_USDT", 0s);
  done("BTC_USDT", 66s);
  auto s = engine_->status_json(at(70s));
  EXPECT_EQ(s["agents"]["BTC_USDT"]["state"], "RECOVERING");
  EXPECT_EQ(s["agents"]["BTC_USDT"]["restarts_hour"], 1);
  auto states = engine_->agent_states(at(70s));
  ASSERT_EQ(states.size(), 6U);
  EXPECT_EQ(states[0].action, "agent_state");
  EXPECT_EQ(std::get<std::string>(states[0].fields.at("state")), "RECOVERING");
  EXPECT_EQ(std::get<std::int64_t>(states[0].fields.at("restarts_hour")), 1);
  proto::Command c;
  c.verb = proto::CommandVerb::kStatus;
  auto res = engine_->on_command(c, at(70s));
  ASSERT_TRUE(res.ok);
  EXPECT_EQ(nlohmann::json::parse(res.detail)["agents"].size(), 6U);
}

TEST_F(EngineTest, LastDiagnosisOutlivesTheIncidentAndTheActuator) {
  fail("BTC_USDT", 1, 0s);
  proto::Diagnosis d;
  d.agent = "BTC_USDT";
  d.cause = "DB lock on decisions table";
  engine_->on_diagnosis(d, at(10s));
  fail("BTC_USDT", 2, 30s);
  done("BTC_USDT", 31s);
  healthy("BTC_USDT", 60s);
  ASSERT_EQ(engine_->agent("BTC_USDT")->phase, Phase::kHealthy);
  auto state = engine_->agent_state("BTC_USDT", at(61s));
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(std::get<std::string>(state->fields.at("last_diagnosis")), d.cause);
  EXPECT_EQ(engine_->status_json(at(61s))["agents"]["BTC_USDT"]["last_diagnosis"], d.cause);
  EXPECT_FALSE(engine_->agent_state("NOPE_USDT", at(61s)).has_value());
  // Persisted: a restarted actuator still shows it.
  auto saved = engine_->to_json(at(62s));
  Engine again(cfg_.agents, Policy::from_config(cfg_), 1);
  ASSERT_TRUE(again.load_json(saved, at(63s)));
  EXPECT_EQ(again.status_json(at(63s))["agents"]["BTC_USDT"]["last_diagnosis"], d.cause);
}

TEST(ReasonTest, Formats) {
  proto::HealthReport r;
  r.verdict = proto::Verdict::kStalled;
  r.decision_age_seconds = 1499.6;
  EXPECT_EQ(reason_for(r), "stalled (age=1500s)");
  r.decision_age_seconds.reset();
  EXPECT_EQ(reason_for(r), "stalled");
  r.verdict = proto::Verdict::kDown;
  r.active_state = "inactive";
  r.sub_state = "dead";
  EXPECT_EQ(reason_for(r), "down (inactive/dead)");
  r.detail = "unit inactive/dead exited on its own (status=0)";
  EXPECT_EQ(reason_for(r), "down (inactive/dead, exited on its own (status=0))");
  common::AgentSpec s;
  s.symbol = "BTC-USDT";
  s.profile = "conservative";
  EXPECT_EQ(restart_log_line(s, "stalled", std::nullopt),
            "SELF-HEAL: restarting BTC-USDT/conservative | reason: stalled | Ollama: unavailable");
}

}  // namespace
}  // namespace trading_heal::actuator

namespace trading_heal::actuator {
namespace {

// Dry run: a sticky stall is told as `would_restart` again and again (every cooldown), never
// as a restart; no budget used, no backoff, no rate limit, never exhausted.
TEST_F(EngineTest, DryRunRecordsWouldRestartAndChangesNothingThatWillHappen) {
  make({{"TRADING_HEAL_DRY_RUN", "true"}});
  Decisions all;
  std::uint32_t n = 0;
  for (auto t = 0s; t <= 30min; t += 30s) append(all, fail("BTC_USDT", ++n, t));
  EXPECT_TRUE(restarts(all).empty()) << "a dry run restarted";
  const auto would = events(all, "would_restart");
  EXPECT_GE(would.size(), 25U) << "one every cooldown (60 s) over 30 min";
  EXPECT_LE(would.size(), 31U);
  EXPECT_NE(would[0].detail.find("SELF-HEAL: restarting BTC-USDT"), std::string::npos);
  EXPECT_TRUE(std::get<bool>(would[0].fields.at("dry_run")));
  EXPECT_TRUE(events(all, "restart").empty());
  EXPECT_TRUE(events(all, "rate_limited").empty());
  EXPECT_TRUE(events(all, "exhausted").empty());
  const auto* a = engine_->agent("BTC_USDT");
  EXPECT_NE(a->phase, Phase::kExhausted);
  EXPECT_TRUE(a->restarts.empty());
  EXPECT_EQ(a->backoff_level, 0);
  EXPECT_EQ(engine_->counters().restarts_issued, 0U);
  EXPECT_EQ(engine_->counters().would_restart, would.size());
  // Out of the dry run, the same agent gets its full budget at once.
  make();
  EXPECT_EQ(restarts(incident("BTC_USDT", 31min)).size(), 1U);
}

}  // namespace
}  // namespace trading_heal::actuator

namespace trading_heal::actuator {
namespace {

// A diagnosis cause is untrusted and kept (state, log, /status): bounded, valid UTF-8.
TEST_F(EngineTest, AHugeDiagnosisCauseIsCut) {
  proto::Diagnosis d;
  d.agent = "BTC_USDT";
  d.cause = std::string(20000, 'x') + "\xe2\x9a";  // and a cut UTF-8 sequence
  engine_->on_diagnosis(d, at(0s));
  const auto& kept = *engine_->agent("BTC_USDT")->diagnosis;
  EXPECT_LE(kept.size(), kMaxCauseBytes + 3);
  EXPECT_EQ(kept.substr(kept.size() - 3), "…");
  EXPECT_EQ(engine_->agent("BTC_USDT")->last_diagnosis, kept);
}

// Many hosts: the centre's order (a `fleet_directive` the probe passes on). This host is "alpha".
class FleetOrderTest : public EngineTest {
 protected:
  void SetUp() override {
    make({{"TRADING_HEAL_DIAGNOSIS_WAIT", "0"}, {"TRADING_HEAL_HOST", "alpha"}});
  }
  Decisions order(bool hold, const std::string& canary_host, std::chrono::milliseconds t,
                  std::int64_t ttl = 10) {
    proto::Event e;
    e.action = "fleet_directive";
    e.reason = "fleet incident fleet-1: beta is the canary host, the others hold";
    e.fields["hold"] = hold;
    e.fields["incident"] = std::string("fleet-1");
    e.fields["cause"] = std::string("agents");
    e.fields["canary_host"] = canary_host;
    e.fields["ttl_seconds"] = ttl;
    return engine_->on_fleet_directive(e, at(t));
  }
};

TEST_F(FleetOrderTest, HeldByTheCentreThenReleasedWhenItLifts) {
  auto ds = order(true, "beta", 0s);
  auto h = events(ds, "fleet_hold");
  ASSERT_EQ(h.size(), 1U);
  EXPECT_EQ(std::get<std::string>(h[0].fields.at("state")), "holding");
  EXPECT_EQ(std::get<std::string>(h[0].fields.at("canary_host")), "beta");
  EXPECT_TRUE(engine_->fleet().holding);
  EXPECT_TRUE(events(order(true, "beta", 2s), "fleet_hold").empty()) << "audited once";
  Decisions all;
  append(all, fail("BTC_USDT", 1, 3s));
  append(all, fail("BTC_USDT", 2, 4s));
  append(all, engine_->on_tick(at(5s)));
  EXPECT_TRUE(restarts(all).empty()) << "held for the centre";
  EXPECT_TRUE(engine_->agent("BTC_USDT")->held);
  EXPECT_EQ(engine_->status_json(at(5s))["fleet_hold"]["canary_host"], "beta");
  // Lifted: released at once, not at its next retry.
  ds = order(false, "", 6s);
  h = events(ds, "fleet_hold");
  ASSERT_EQ(h.size(), 1U);
  EXPECT_EQ(std::get<std::string>(h[0].fields.at("state")), "lifted");
  auto rs = restarts(ds);
  ASSERT_EQ(rs.size(), 1U);
  EXPECT_EQ(rs[0].agent, "BTC_USDT");
  EXPECT_FALSE(engine_->agent("BTC_USDT")->held);
  EXPECT_TRUE(engine_->status_json(at(6s))["fleet_hold"].is_null());
}

TEST_F(FleetOrderTest, TheCanaryHostIsNotHeld) {
  EXPECT_TRUE(events(order(true, "alpha", 0s), "fleet_hold").empty());
  EXPECT_FALSE(engine_->fleet().holding);
  Decisions all;
  append(all, fail("BTC_USDT", 1, 1s));
  append(all, fail("BTC_USDT", 2, 2s));
  EXPECT_EQ(restarts(all).size(), 1U);
}

// The centre unheard for the order's ttl: the host decides alone again (and says so).
TEST_F(FleetOrderTest, AnOrderNotRepeatedLapses) {
  order(true, "", 0s, 5);
  Decisions all;
  append(all, fail("ETH_USDT", 1, 1s));
  append(all, fail("ETH_USDT", 2, 2s));
  EXPECT_TRUE(restarts(all).empty());
  EXPECT_EQ(engine_->next_deadline(at(2s)), at(5s).mono) << "the lapse is a deadline";
  EXPECT_TRUE(restarts(engine_->on_tick(at(4900ms))).empty());
  auto ds = engine_->on_tick(at(5s));
  auto h = events(ds, "fleet_hold");
  ASSERT_EQ(h.size(), 1U);
  EXPECT_EQ(std::get<std::string>(h[0].fields.at("state")), "lapsed");
  EXPECT_EQ(restarts(ds).size(), 1U);
  EXPECT_FALSE(engine_->fleet().holding);
}

// A ttl outside 1..60 s is bounded; an order without `hold` holds nothing.
TEST_F(FleetOrderTest, OddOrdersAreBounded) {
  order(true, "", 0s, 100000);
  EXPECT_EQ(*engine_->fleet().until, at(60s).mono);
  order(true, "", 0s, -5);
  EXPECT_EQ(*engine_->fleet().until, at(1s).mono);
  proto::Event e;
  e.action = "fleet_directive";
  engine_->on_fleet_directive(e, at(2s));
  EXPECT_FALSE(engine_->fleet().holding);
  e.action = "restart";  // not an order
  e.fields["hold"] = true;
  engine_->on_fleet_directive(e, at(3s));
  EXPECT_FALSE(engine_->fleet().holding);
}

// The failures counted while the centre held this host are not failed restarts: released, the
// agent is restarted, not declared exhausted (a restart earlier this hour notwithstanding).
TEST_F(FleetOrderTest, FailuresCountedWhileHeldDoNotExhaust) {
  restart_cycle("BTC_USDT", 0s);
  order(true, "beta", 100s, 60);
  Decisions all;
  for (std::uint32_t n = 1; n <= 12; ++n) append(all, fail("BTC_USDT", n, 100s + n * 1s));
  EXPECT_TRUE(restarts(all).empty());
  EXPECT_TRUE(events(all, "exhausted").empty());
  auto ds = order(false, "", 115s);
  EXPECT_EQ(restarts(ds).size(), 1U);
  EXPECT_TRUE(events(ds, "exhausted").empty());
}

}  // namespace
}  // namespace trading_heal::actuator
