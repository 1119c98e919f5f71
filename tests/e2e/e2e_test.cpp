// End to end: the four daemons deployed as user units by deploy/deploy.sh --user on the testbed
// (real PostgreSQL, journald, systemd user manager, simulated agents, fake Ollama), healing real
// failures of the simulated agents. Each test deploys its own instance (fresh state and audit)
// and removes it. Figures go to e2e-report.md next to the build's bin directory.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/bed.hpp"
#include "support/process.hpp"
#include "support/wait.hpp"
#include "system.hpp"
#include "system_test.hpp"

namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace t = trading_heal::test;
using t::Bed;
using t::wait_until;

constexpr const char* kReport = "e2e-report.md";

std::string fmt(double v, int digits = 2) {
  std::ostringstream o;
  o.setf(std::ios::fixed);
  o.precision(digits);
  o << v;
  return o.str();
}

// The tap (trading-heal-tap), its JSON lines collected as they come.
class Tap {
 public:
  Tap(const t::System& sys, std::vector<std::string> args) {
    std::vector<std::string> argv{Bed::bin("trading-heal-tap")};
    argv.insert(argv.end(), args.begin(), args.end());
    child_.emplace(t::Child::spawn(argv, sys.settings(), true));
  }
  ~Tap() {
    if (child_) child_->signal(SIGTERM);
  }
  std::vector<json> lines() {
    const std::string& all = child_->output();
    std::istringstream in(
        all.substr(0, all.rfind('\n') == std::string::npos ? 0 : all.rfind('\n')));
    std::vector<json> out;
    std::string l;
    while (std::getline(in, l)) {
      auto j = json::parse(l, nullptr, false);
      if (!j.is_discarded()) out.push_back(j);
    }
    return out;
  }
  // The first line matching `pred`, if any yet.
  std::optional<json> find(const std::function<bool(const json&)>& pred) {
    for (auto& j : lines()) {
      if (pred(j)) return j;
    }
    return std::nullopt;
  }
  bool connected() { return !lines().empty(); }

 private:
  std::optional<t::Child> child_;
};

bool is_health(const json& j, const std::string& agent, const std::string& verdict) {
  return j.value("kind", "") == "health" && j.value("agent", "") == agent &&
         j.value("verdict", "") == verdict;
}

class E2e : public t::SystemTest {
 protected:
  E2e() : SystemTest("e2e") {}
  static void SetUpTestSuite() { Bed::export_env(); }
  static void TearDownTestSuite() {
    t::Report::write(kReport,
                     "# End-to-end figures\n\n"
                     "Written by `e2e_test` (tests/e2e) on the testbed: the four daemons as user "
                     "units (deploy.sh --user), interval 1 s, stall threshold 5 s.\n\n"
                     "| scenario | figure |\n|---|---|\n");
  }

  std::vector<json> all_restarts() {
    std::vector<json> out;
    for (auto& e : sys_.audit("action=restart")) {
      if (event_ts(e) >= since_) out.push_back(e);
    }
    return out;
  }
};

// ---- stall -> diagnosis -> restart with the reason -> recovered --------------------------------

TEST_F(E2e, StallIsDiagnosedRestartedAndRecoversVisibleEverywhere) {
  const std::string victim = "BTC_USDT";
  const std::string sym = t::symbol_of(victim);
  // A model's latency keeps the agent visibly stalled for a few scrapes before the restart.
  ASSERT_TRUE(t::fake_ollama("/_fake/mode", R"({"mode":"slow","seconds":3})"));
  ASSERT_TRUE(deploy({{"OLLAMA_TIMEOUT", "8"}, {"TRADING_HEAL_DIAGNOSIS_WAIT", "10"}}));

  // Prometheus with the shipped alert rules, scraping the exporter every second.
  const std::string prom_dir = "/tmp/th-e2e-" + name_ + "/prom";
  std::filesystem::create_directories(prom_dir);
  std::filesystem::copy_file(Bed::source_dir() + "/deploy/prometheus/alert_rules.yml",
                             prom_dir + "/alert_rules.yml");
  {
    std::ofstream cfg(prom_dir + "/prometheus.yml");
    cfg << "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
           "rule_files: [alert_rules.yml]\n"
           "scrape_configs:\n"
           "  - job_name: trading-heal\n"
           "    static_configs: [{targets: ['127.0.0.1:"
        << t::kMetricsPort << "']}]\n";
  }
  auto prom =
      t::Child::spawn({"/usr/bin/prometheus", "--config.file=" + prom_dir + "/prometheus.yml",
                       "--web.listen-address=127.0.0.1:" + std::to_string(t::kPromPort),
                       "--storage.tsdb.path=" + prom_dir + "/data", "--log.level=warn"});
  auto prom_query = [&](const std::string& q) -> json {
    auto body = t::http_get(t::kPromPort, "/api/v1/query?query=" + q);
    if (!body) return nullptr;
    auto j = json::parse(*body, nullptr, false);
    if (j.is_discarded() || j.value("status", "") != "success") return nullptr;
    return j["data"]["result"];
  };
  // up{job="trading-heal"} == 1
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = prom_query("up%7Bjob%3D%22trading-heal%22%7D");
        return r.is_array() && !r.empty() && r[0]["value"][1] == "1";
      },
      30s, 250ms))
      << "Prometheus did not scrape the exporter successfully";

  Tap tap(sys_, {"--agent", victim});
  ASSERT_TRUE(wait_until([&] { return tap.connected(); }, 10s)) << "the tap shows nothing";

  const double t0 = t::now_epoch();
  const long old_pid = t::unit_main_pid(t::agent_unit(victim));
  t::fault(victim, "stall");

  ASSERT_TRUE(wait_until([&] { return has_event(victim, "recovered"); }, 60s, 250ms))
      << "no `recovered` within 60 s of the stall";
  const double t_recovered = t::now_epoch();

  // The audit: a diagnosis from the model, a restart carrying the reason and the diagnosis,
  // then recovered, in this order.
  auto diag = events(victim, "diagnosis");
  auto restarts = events(victim, "restart");
  auto recovered = events(victim, "recovered");
  ASSERT_EQ(restarts.size(), 1U);
  ASSERT_FALSE(diag.empty()) << "no diagnosis event";
  const auto& r = restarts[0];
  EXPECT_TRUE(r.value("success", false));
  EXPECT_NE(r.value("reason", "").find("stalled"), std::string::npos) << r.dump();
  EXPECT_NE(r.dump().find("DB lock on decisions table"), std::string::npos)
      << "the restart does not carry the model's diagnosis: " << r.dump();
  EXPECT_LE(event_ts(diag[0]), event_ts(r));
  EXPECT_LE(event_ts(r), event_ts(recovered[0]));
  const long new_pid = t::unit_main_pid(t::agent_unit(victim));
  EXPECT_NE(new_pid, old_pid);
  EXPECT_GT(new_pid, 0);

  // /metrics
  const std::string m = sys_.metrics();
  EXPECT_EQ(t::sample(m, "trading_agent_restart_total", {{"symbol", sym}}), 1.0);
  EXPECT_EQ(
      t::sample(m, "trading_selfheal_actions_total", {{"action", "restart"}, {"symbol", sym}}),
      1.0);
  EXPECT_EQ(
      t::sample(m, "trading_selfheal_actions_total", {{"action", "recovered"}, {"symbol", sym}}),
      1.0);
  EXPECT_GE(t::sample(m, "trading_ollama_analyze_total", {{"symbol", sym}}).value_or(0), 1.0);
  EXPECT_GE(t::sample(m, "trading_ollama_analysis_latency_seconds", {{"symbol", sym}}).value_or(0),
            2.5)
      << "the fake model answers in 3 s";
  EXPECT_EQ(t::sample(m, "trading_agent_up", {{"symbol", sym}}), 1.0);
  EXPECT_EQ(t::sample(m, "trading_agent_stalled", {{"symbol", sym}}), 0.0);

  // /status (state over PUB/SUB: it follows the audit within a moment)
  json st;
  EXPECT_TRUE(wait_until(
      [&] {
        st = sys_.status_of(victim);
        return t::str(st, "verdict") == "HEALTHY" && t::integer(st, "restarts_hour", -1) == 1 &&
               st["last_restart"].is_string() &&
               st["last_diagnosis"].dump().find("DB lock") != std::string::npos;
      },
      5s, 100ms))
      << st.dump();

  // The tap: the probe's STALLED, the diagnoser's diagnosis, the actuator's RESTARTING.
  EXPECT_TRUE(tap.find([&](const json& j) { return is_health(j, victim, "STALLED"); }))
      << "the tap showed no STALLED report";
  EXPECT_TRUE(tap.find([&](const json& j) { return j.value("kind", "") == "diagnosis"; }))
      << "the tap showed no diagnosis";
  EXPECT_TRUE(tap.find([&](const json& j) {
    return j.value("kind", "") == "event" && j.contains("fields") &&
           j["fields"].value("state", "") == "RESTARTING";
  })) << "the tap showed no RESTARTING state";

  // Prometheus: the rule TradingAgentStalled went pending for the victim during the stall.
  const std::string pending =
      "max_over_time(ALERTS%7Balertname%3D%22TradingAgentStalled%22%2Calertstate%3D%22pending%22"
      "%2Csymbol%3D%22" +
      sym + "%22%7D%5B10m%5D)";
  EXPECT_TRUE(wait_until(
      [&] {
        auto res = prom_query(pending);
        return res.is_array() && !res.empty();
      },
      15s, 250ms))
      << "TradingAgentStalled never went pending in Prometheus";
  prom.signal(SIGTERM);
  prom.wait(10s);

  const double stalled_at = t::parse_ts(diag[0].value("ts", "")).value_or(t0);
  t::Report::add(kReport, "| stall -> diagnosis -> restart -> recovered | fault to diagnosis " +
                              fmt(stalled_at - t0) + " s, to restart " + fmt(event_ts(r) - t0) +
                              " s, to recovered " + fmt(t_recovered - t0) +
                              " s (threshold 5 s, model 3 s) |");
}

// ---- crash with Restart=no; a unit past its StartLimitBurst
// --------------------------------------

TEST_F(E2e, CrashIsSeenWithinASecondAndRestarted) {
  const std::string victim = "ETH_USDT";
  ASSERT_EQ(Bed::sh("'" + Bed::source_dir() + "/tests/bed/bed.sh' restart-policy " + victim +
                    " no 2>/dev/null"),
            0);
  ASSERT_TRUE(deploy());
  Tap tap(sys_, {"--agent", victim, "--kind", "health"});
  ASSERT_TRUE(wait_until([&] { return tap.connected(); }, 10s));

  const long old_pid = t::unit_main_pid(t::agent_unit(victim));
  ASSERT_GT(old_pid, 0);
  const double t0 = t::now_epoch();
  ASSERT_EQ(::kill(static_cast<pid_t>(old_pid), SIGKILL), 0);
  std::optional<json> down;
  ASSERT_TRUE(wait_until(
      [&] {
        down = tap.find([&](const json& j) {
          return is_health(j, victim, "DOWN") && j.value("ts", 0.0) >= t0;
        });
        return down.has_value();
      },
      5s, 20ms))
      << "no DOWN report within 5 s of kill -9";
  const double t_down = down->value("ts", 0.0) - t0;
  EXPECT_LT(t_down, 1.0) << "DOWN reported " << t_down << " s after the crash";

  long new_pid = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        new_pid = t::unit_main_pid(t::agent_unit(victim));
        return new_pid > 0 && new_pid != old_pid;
      },
      30s, 20ms))
      << "the crashed agent was not restarted within 30 s";
  const double t_restart = t::now_epoch() - t0;
  ASSERT_TRUE(wait_until([&] { return has_event(victim, "recovered"); }, 30s, 250ms));
  auto restarts = events(victim, "restart");
  ASSERT_EQ(restarts.size(), 1U);
  EXPECT_NE(restarts[0].value("reason", "").find("down"), std::string::npos) << restarts[0].dump();

  t::Report::add(kReport, "| crash (kill -9, Restart=no) | DOWN reported after " + fmt(t_down, 3) +
                              " s; new MainPID after " + fmt(t_restart) + " s |");
}

TEST_F(E2e, UnitFailedPastItsStartLimitIsBroughtBack) {
  const std::string victim = "XRP_USDT";
  // The operators' policy for this unit: systemd restarts it itself, at most 3 times in 60 s.
  const std::string dropin =
      Bed::get("XDG_CONFIG_HOME") + "/systemd/user/" + t::agent_unit(victim) + ".d";
  std::filesystem::create_directories(dropin);
  {
    std::ofstream f(dropin + "/startlimit.conf");
    f << "[Unit]\nStartLimitIntervalSec=60\nStartLimitBurst=3\n"
         "[Service]\nRestart=always\nRestartSec=200ms\n";
  }
  ASSERT_EQ(Bed::sh("systemctl --user daemon-reload"), 0);
  ASSERT_TRUE(deploy());
  // Held by the operator while it crash-loops, so that systemd alone exhausts its start limit.
  std::string out;
  ASSERT_EQ(sys_.ctl("pause " + victim + " --reason e2e-start-limit", &out), 0) << out;
  t::fault(victim, "crash", true);
  const double t0 = t::now_epoch();
  // systemd 252 leaves Result=exit-code (start-limit-hit only for a start it refuses itself).
  ASSERT_TRUE(wait_until(
      [&] {
        return t::unit_property(t::agent_unit(victim), "ActiveState") == "failed" &&
               std::atoi(t::unit_property(t::agent_unit(victim), "NRestarts").c_str()) >= 3;
      },
      30s, 50ms))
      << "the unit did not fail past its start limit: "
      << t::unit_property(t::agent_unit(victim), "ActiveState") << "/"
      << t::unit_property(t::agent_unit(victim), "Result")
      << " NRestarts=" << t::unit_property(t::agent_unit(victim), "NRestarts");
  const double t_failed = t::now_epoch();
  EXPECT_TRUE(events(victim, "restart").empty()) << "restarted while paused";
  t::fault(victim, "ok");

  ASSERT_EQ(sys_.ctl("resume " + victim, &out), 0) << out;
  const double t_resume = t::now_epoch();
  ASSERT_TRUE(
      wait_until([&] { return t::unit_property(t::agent_unit(victim), "ActiveState") == "active"; },
                 30s, 50ms))
      << "the failed unit was not brought back";
  const double t_active = t::now_epoch();
  // Between the crashes systemd's own restarts may have looked healthy for a moment ("recovered
  // without restart" while paused): the recovery that counts is the one after the resume.
  ASSERT_TRUE(wait_until(
      [&] {
        if (events(victim, "restart").empty()) return false;
        for (const auto& e : events(victim, "recovered")) {
          if (event_ts(e) >= t_resume - 0.5) return true;
        }
        return false;
      },
      30s, 250ms))
      << "no restart and recovery after the resume";
  auto restarts = events(victim, "restart");
  ASSERT_EQ(restarts.size(), 1U);
  EXPECT_EQ(restarts[0].value("reset_failed", false), true) << restarts[0].dump();
  t::Report::add(kReport,
                 "| unit `failed` past StartLimitBurst=3 (crash loop, held by `ctl pause`) | "
                 "failed " +
                     fmt(t_failed - t0) +
                     " s after the sticky crash; after `ctl resume` "
                     "active again in " +
                     fmt(t_active - t_resume) + " s (reset-failed + restart) |");
}

// ---- rate limit and exhaustion ---------------------------------------------------------------

TEST_F(E2e, PermanentlyBrokenAgentGetsThreeRestartsThenRateLimitedThenExhausted) {
  const std::string victim = "SOL_USDT";
  ASSERT_TRUE(deploy({{"TRADING_HEAL_MAX_RESTARTS", "3"}}));
  const double t0 = t::now_epoch();
  t::fault(victim, "stall", true);  // survives restarts: an agent broken for good
  ASSERT_TRUE(wait_until([&] { return has_event(victim, "exhausted"); }, 150s, 500ms))
      << "no `exhausted` within 150 s; restarts so far: " << events(victim, "restart").size();
  auto restarts = events(victim, "restart");
  auto limited = events(victim, "rate_limited");
  auto exhausted = events(victim, "exhausted");
  ASSERT_EQ(restarts.size(), 3U);
  ASSERT_FALSE(limited.empty());
  EXPECT_EQ(limited[0].value("limit", ""), "max_restarts") << limited[0].dump();
  EXPECT_LT(event_ts(restarts[2]), event_ts(limited[0]));
  EXPECT_LE(event_ts(limited[0]), event_ts(exhausted[0]));
  EXPECT_EQ(exhausted.size(), 1U);
  auto st = sys_.status_of(victim);
  EXPECT_EQ(t::str(st, "incident_state"), "EXHAUSTED") << st.dump();
  EXPECT_EQ(t::integer(st, "restarts_hour", -1), 3) << st.dump();
  EXPECT_GE(sys_.metric("trading_selfheal_actions_total",
                        {{"action", "rate_limited"}, {"symbol", t::symbol_of(victim)}})
                .value_or(0),
            1.0);
  // Exhausted is final until healthy or resumed: no fourth restart while it stays broken.
  const auto failures = t::integer(st, "consecutive_failures", 0);
  ASSERT_TRUE(wait_until(
      [&] { return t::integer(sys_.status_of(victim), "consecutive_failures", 0) >= failures + 3; },
      20s, 250ms));
  EXPECT_EQ(events(victim, "restart").size(), 3U);
  t::fault(victim, "ok");
  t::Report::add(kReport, "| permanently stalled agent | restarts at +" +
                              fmt(event_ts(restarts[0]) - t0, 1) + ", +" +
                              fmt(event_ts(restarts[1]) - t0, 1) + ", +" +
                              fmt(event_ts(restarts[2]) - t0, 1) + " s; rate_limited at +" +
                              fmt(event_ts(limited[0]) - t0, 1) + " s; exhausted at +" +
                              fmt(event_ts(exhausted[0]) - t0, 1) + " s; no 4th restart |");
}

// ---- the LLM down, slow or talking nonsense: the restart is on time --------------------------

class E2eOllama : public E2e, public ::testing::WithParamInterface<const char*> {};

TEST_P(E2eOllama, RestartIsOnTimeAndTheErrorCounted) {
  const std::string mode = GetParam();
  const std::string victim = "DOGE_USDT";
  std::map<std::string, std::string> settings{{"OLLAMA_TIMEOUT", "3"},
                                              {"TRADING_HEAL_DIAGNOSIS_WAIT", "8"}};
  if (mode == "down") {
    settings["OLLAMA_HOST"] = "http://127.0.0.1:9";  // discard port: nothing listens
  } else if (mode == "slow") {
    ASSERT_TRUE(t::fake_ollama("/_fake/mode", R"({"mode":"slow","seconds":60})"));
  } else {
    ASSERT_TRUE(t::fake_ollama("/_fake/mode", R"({"mode":"garbage"})"));
  }
  ASSERT_TRUE(deploy(settings));
  const double t0 = t::now_epoch();
  t::fault(victim, "stall");
  ASSERT_TRUE(wait_until([&] { return has_event(victim, "recovered"); }, 60s, 250ms))
      << "no recovery with Ollama " << mode;
  auto errors = events(victim, "ollama_error");
  auto restarts = events(victim, "restart");
  ASSERT_FALSE(errors.empty()) << "no ollama_error event with Ollama " << mode;
  ASSERT_EQ(restarts.size(), 1U);
  // Stall detected after 5 s (+1 s interval), diagnosed after the 2nd failure; the model's
  // failure costs at most OLLAMA_TIMEOUT (3 s); the restart never waits past DIAGNOSIS_WAIT.
  const double to_restart = event_ts(restarts[0]) - t0;
  EXPECT_LT(to_restart, 5 + 2 + 8 + 2) << "restart late with Ollama " << mode;
  EXPECT_NE(restarts[0].value("reason", "").find("stalled"), std::string::npos);
  EXPECT_GE(sys_.metric("trading_selfheal_actions_total",
                        {{"action", "ollama_error"}, {"symbol", t::symbol_of(victim)}})
                .value_or(0),
            1.0);
  t::Report::add(kReport, "| Ollama " + mode + " | `ollama_error` (" +
                              errors[0].value("detail", "").substr(0, 60) + ") at +" +
                              fmt(event_ts(errors[0]) - t0, 1) + " s; restart at +" +
                              fmt(to_restart, 1) + " s after the stall began |");
}

INSTANTIATE_TEST_SUITE_P(Modes, E2eOllama, ::testing::Values("down", "slow", "garbage"),
                         [](const auto& p) { return std::string(p.param); });

// ---- PostgreSQL down: no restart, heartbeats, one global incident ----------------------------

TEST_F(E2e, DatabaseDownRestartsNothingAndOpensOneGlobalIncident) {
  ASSERT_TRUE(deploy());
  const double t0 = t::now_epoch();
  ASSERT_EQ(Bed::sh("'" + Bed::source_dir() + "/tests/bed/bed.sh' pg-stop >/dev/null 2>&1"), 0);
  std::vector<json> global;
  ASSERT_TRUE(wait_until(
      [&] {
        global = sys_.audit("action=global_incident");
        return !global.empty();
      },
      30s, 250ms))
      << "no global incident with PostgreSQL down";
  const double t_global = event_ts(global.back()) - t0;
  EXPECT_NE(global.back().dump().find("database"), std::string::npos) << global.back().dump();
  // Ages from the heartbeats; every agent stays HEALTHY well past the stall threshold.
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = sys_.api("/status");
        if (!s) return false;
        for (const auto& a : (*s)["agents"]) {
          if (t::str(a, "age_source") != "heartbeat") return false;
        }
        return true;
      },
      30s, 250ms))
      << "ages do not come from the heartbeats: " << sys_.api("/status").value_or(nullptr).dump();
  const double observed_from = t::now_epoch();
  // 15 s = three stall thresholds without a row reaching the database.
  while (t::now_epoch() - observed_from < 15) {
    auto s = sys_.api("/status");
    ASSERT_TRUE(s.has_value());
    for (const auto& a : (*s)["agents"]) {
      EXPECT_EQ(t::str(a, "verdict"), "HEALTHY") << a.dump();
    }
    ASSERT_TRUE(all_restarts().empty()) << "an agent was restarted with the database down";
    std::this_thread::sleep_for(1s);  // one probe interval between samples
  }
  EXPECT_EQ(sys_.audit("action=global_incident").size(), 1U);
  ASSERT_EQ(Bed::sh("'" + Bed::source_dir() + "/tests/bed/bed.sh' pg-start >/dev/null 2>&1"), 0);
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = sys_.api("/status");
        if (!s) return false;
        for (const auto& a : (*s)["agents"]) {
          if (t::str(a, "age_source") != "db") return false;
        }
        return true;
      },
      60s, 500ms))
      << "the probe did not return to the database";
  EXPECT_TRUE(all_restarts().empty());
  t::Report::add(kReport, "| PostgreSQL stopped | global incident (database unreachable) after " +
                              fmt(t_global, 1) +
                              " s; 6 agents HEALTHY from heartbeats for 15 s; "
                              "0 restarts; back to database ages after pg-start |");
}

// ---- four agents stalled at once: one global incident, a canary first, no storm ---------------

TEST_F(E2e, FourStalledAtOnceGiveOneGlobalIncidentAndACanaryFirst) {
  ASSERT_TRUE(deploy({{"TRADING_HEAL_GLOBAL_WINDOW", "5"}}));
  const std::vector<std::string> victims{"BTC_USDT", "ETH_USDT", "XRP_USDT", "SOL_USDT"};
  const double t0 = t::now_epoch();
  for (const auto& v : victims) t::fault(v, "stall");
  ASSERT_TRUE(wait_until(
      [&] {
        for (const auto& v : victims) {
          if (!has_event(v, "recovered")) return false;
        }
        return true;
      },
      120s, 500ms))
      << "not all four recovered within 120 s";
  auto global = sys_.audit("action=global_incident");
  ASSERT_EQ(global.size(), 1U);
  auto restarts = all_restarts();
  ASSERT_EQ(restarts.size(), 4U) << "one restart per agent, no storm";
  // The canary: named by the incident when an agent was already being restarted as it opened,
  // else the first restart, flagged as such.
  const std::string canary_agent = global[0].value("canary", restarts[0].value("agent", ""));
  EXPECT_EQ(restarts[0].value("agent", ""), canary_agent) << "the canary is not restarted first";
  EXPECT_TRUE(global[0].contains("canary") || restarts[0].value("canary", false))
      << restarts[0].dump();
  auto recovered_at = [&](const std::string& agent) {
    auto r = events(agent, "recovered");
    return r.empty() ? 1e18 : event_ts(r[0]);
  };
  // No storm: every other agent after the canary recovered, one at a time.
  for (std::size_t i = 1; i < restarts.size(); ++i) {
    EXPECT_GE(event_ts(restarts[i]), recovered_at(restarts[i - 1].value("agent", "")))
        << restarts[i].value("agent", "") << " restarted before "
        << restarts[i - 1].value("agent", "") << " recovered";
    EXPECT_FALSE(restarts[i].value("canary", false));
  }
  std::string order;
  for (const auto& r : restarts) {
    order += (order.empty() ? "" : ", ") + r.value("agent", "") + " +" + fmt(event_ts(r) - t0, 1);
  }
  t::Report::add(kReport, "| 4 agents stalled together | 1 global incident at +" +
                              fmt(event_ts(global[0]) - t0, 1) + " s; restarts: " + order +
                              " s (canary first, the rest after it recovered, one at a time) |");
}

// ---- the operator: systemctl stop, ctl pause / resume -----------------------------------------

TEST_F(E2e, OperatorStopIsNeverRestartedAndPauseHoldsUntilResume) {
  ASSERT_TRUE(deploy());
  const std::string stopped = "ADA_USDT";
  const std::string paused = "XRP_USDT";
  ASSERT_EQ(Bed::sh("systemctl --user stop " + t::agent_unit(stopped)), 0);
  std::string out;
  ASSERT_EQ(sys_.ctl("pause " + paused + " --reason maintenance", &out), 0) << out;
  t::fault(paused, "stall");
  // The paused agent goes well past the point where it would have been restarted.
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = sys_.status_of(paused);
        return t::str(s, "verdict") == "STALLED" && t::integer(s, "consecutive_failures", 0) >= 5;
      },
      40s, 250ms))
      << sys_.status_of(paused).dump();
  auto s_stopped = sys_.status_of(stopped);
  EXPECT_EQ(t::str(s_stopped, "verdict"), "STOPPED") << s_stopped.dump();
  auto s_paused = sys_.status_of(paused);
  EXPECT_EQ(s_paused["paused"], true) << s_paused.dump();
  EXPECT_TRUE(events(paused, "restart").empty()) << "a paused agent was restarted";
  EXPECT_TRUE(events(stopped, "restart").empty()) << "an operator's stop was undone";
  EXPECT_FALSE(events(paused, "paused").empty());
  EXPECT_EQ(t::unit_property(t::agent_unit(stopped), "ActiveState"), "inactive");

  ASSERT_EQ(sys_.ctl("resume " + paused, &out), 0) << out;
  const double t_resume = t::now_epoch();
  ASSERT_TRUE(wait_until([&] { return has_event(paused, "recovered"); }, 40s, 250ms))
      << "not healed after resume";
  auto restarts = events(paused, "restart");
  ASSERT_EQ(restarts.size(), 1U);
  EXPECT_GE(event_ts(restarts[0]), t_resume - 0.5);
  EXPECT_TRUE(events(stopped, "restart").empty());
  EXPECT_EQ(t::unit_property(t::agent_unit(stopped), "ActiveState"), "inactive");

  // The rest of the operator's tool, on the same running system.
  ASSERT_EQ(sys_.ctl("status", &out), 0) << out;
  std::map<std::string, std::vector<std::string>>
      rows;  // by AGENT: HOST AGENT SYMBOL VERDICT AGE THRESHOLD FAILS RESTARTS/H ...
  std::string line;
  for (std::istringstream lines(out); std::getline(lines, line);) {
    std::istringstream cols(line);
    std::vector<std::string> c{std::istream_iterator<std::string>(cols), {}};
    if (c.size() >= 8) rows[c[1]] = c;
  }
  for (const char* a : {"BTC_USDT", "ETH_USDT", "XRP_USDT", "SOL_USDT", "DOGE_USDT", "ADA_USDT"}) {
    EXPECT_TRUE(rows.contains(a)) << a << " missing from `ctl status`:\n" << out;
  }
  EXPECT_EQ(rows[stopped].at(3), "STOPPED") << out;
  EXPECT_EQ(rows[paused].at(7), "1") << "restarts this hour\n" << out;
  ASSERT_EQ(sys_.ctl("audit --symbol XRP-USDT --action restart", &out), 0) << out;
  EXPECT_NE(out.find("stalled (age="), std::string::npos) << out;
  ASSERT_EQ(sys_.ctl("--json audit --symbol XRP-USDT --tail 50", &out), 0) << out;
  std::set<std::string> actions;
  for (std::istringstream lines(out); std::getline(lines, line);) {
    const auto e = nlohmann::json::parse(line, nullptr, false);
    actions.insert(e.is_object() ? e.value("action", "?") : "not JSON: " + line);
  }
  for (const char* a : {"paused", "resumed", "restart", "recovered"}) {
    EXPECT_TRUE(actions.contains(a)) << a << " not in `ctl --json audit`:\n" << out;
  }
  EXPECT_EQ(sys_.ctl("audit verify '" + sys_.audit_path() + "'", &out), 0) << out;
  EXPECT_EQ(sys_.ctl("pause NOPE_USDT", &out), 1) << out;
  EXPECT_NE(out.find("NOPE_USDT"), std::string::npos) << out;
  // An on-demand diagnosis of the stopped agent, through the diagnoser's control socket.
  const auto asked = std::chrono::steady_clock::now();
  ASSERT_EQ(sys_.ctl("diagnose " + stopped, &out), 0) << out;
  const double diagnose_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - asked).count();
  EXPECT_NE(out.find("diagnosis"), std::string::npos) << out;
  EXPECT_FALSE(events(stopped, "diagnosis").empty());
  t::Report::add(kReport,
                 "| `ctl` | status lists the six agents (ADA STOPPED, XRP 1 restart "
                 "this hour); audit filters and `--json`; `audit verify` on the live "
                 "file; an unknown agent refused with exit 1; `diagnose` answered in " +
                     fmt(diagnose_s) + " s |");
  t::Report::add(kReport,
                 "| operator stop; `ctl pause` | stopped agent STOPPED, never restarted; "
                 "paused agent STALLED with >= 5 failures and not restarted; restarted " +
                     fmt(event_ts(restarts[0]) - t_resume) + " s after `ctl resume` |");
}

// An agent whose process exits by itself with status 0 (Restart=no, as a unit left `inactive`
// with result success) is DOWN and healed; an operator's `systemctl stop` of another stays
// STOPPED. Both units end in the same state: only the stop job tells them apart.
TEST_F(E2e, AnAgentExitingByItselfIsHealedAnOperatorsStopIsNot) {
  const std::string exits = "SOL_USDT";
  const std::string stopped = "DOGE_USDT";
  for (const auto& a : {exits, stopped}) {
    ASSERT_EQ(Bed::sh("'" + Bed::source_dir() + "/tests/bed/bed.sh' restart-policy " + a +
                      " no 2>/dev/null"),
              0);
  }
  ASSERT_TRUE(deploy());
  ASSERT_TRUE(wait_until([&] { return t::str(sys_.status_of(exits), "verdict") == "HEALTHY"; }, 30s,
                         200ms));
  const long old_pid = t::unit_main_pid(t::agent_unit(exits));
  ASSERT_EQ(Bed::sh("systemctl --user stop " + t::agent_unit(stopped)), 0);
  t::fault(exits, "clean-exit");
  ASSERT_TRUE(wait_until([&] { return has_event(exits, "recovered"); }, 40s, 250ms))
      << "an agent that exited by itself was not healed: " << sys_.status_of(exits).dump();
  auto restarts = events(exits, "restart");
  ASSERT_EQ(restarts.size(), 1U);
  EXPECT_NE(restarts[0].value("reason", "").find("exited on its own (status=0)"), std::string::npos)
      << restarts[0].dump();
  EXPECT_NE(t::unit_main_pid(t::agent_unit(exits)), old_pid);
  // The stopped one: STOPPED, not restarted, not paging.
  auto st = sys_.status_of(stopped);
  EXPECT_EQ(t::str(st, "verdict"), "STOPPED") << st.dump();
  EXPECT_TRUE(events(stopped, "restart").empty());
  EXPECT_EQ(t::unit_property(t::agent_unit(stopped), "ActiveState"), "inactive");
  EXPECT_EQ(sys_.metric("trading_agent_stopped", {{"symbol", t::symbol_of(stopped)}}).value_or(-1),
            1);
  EXPECT_EQ(sys_.metric("trading_agent_stopped", {{"symbol", t::symbol_of(exits)}}).value_or(-1),
            0);
  t::Report::add(kReport,
                 "| exit 0 by itself vs `systemctl stop` | the first DOWN (\"exited on its "
                 "own\") and restarted; the second STOPPED, trading_agent_stopped 1 |");
}

// Dry run: a sticky stall is told as would_restart again and again; nothing is restarted and
// nothing that decides future restarts moves (restart counter, budget, exhausted).
TEST_F(E2e, DryRunRecordsWouldRestartAndRestartsNothing) {
  const std::string victim = "ETH_USDT";
  ASSERT_TRUE(deploy({{"TRADING_HEAL_DRY_RUN", "true"}, {"TRADING_HEAL_COOLDOWN", "2"}}));
  const long pid = t::unit_main_pid(t::agent_unit(victim));
  t::fault(victim, "stall", true);
  ASSERT_TRUE(wait_until([&] { return events(victim, "would_restart").size() >= 4; }, 60s, 500ms))
      << sys_.status_of(victim).dump();
  // Well past the point where a real run would be rate limited (3 an hour) and exhausted (6).
  ASSERT_TRUE(
      wait_until([&] { return t::integer(sys_.status_of(victim), "consecutive_failures", 0) >= 8; },
                 30s, 500ms));
  EXPECT_EQ(t::unit_main_pid(t::agent_unit(victim)), pid) << "a dry run restarted the agent";
  EXPECT_TRUE(events(victim, "restart").empty());
  EXPECT_TRUE(events(victim, "rate_limited").empty());
  EXPECT_TRUE(events(victim, "exhausted").empty());
  EXPECT_EQ(
      sys_.metric("trading_agent_restart_total", {{"symbol", t::symbol_of(victim)}}).value_or(-1),
      0);
  EXPECT_GE(sys_.metric("trading_selfheal_actions_total",
                        {{"action", "would_restart"}, {"symbol", t::symbol_of(victim)}})
                .value_or(0),
            4);
  EXPECT_NE(
      events(victim, "would_restart")[0].value("detail", "").find("SELF-HEAL: restarting ETH-USDT"),
      std::string::npos);
  EXPECT_NE(t::str(sys_.status_of(victim), "incident_state"), "EXHAUSTED");
  t::Report::add(kReport, "| dry run, sticky stall | " +
                              std::to_string(events(victim, "would_restart").size()) +
                              " would_restart records, trading_agent_restart_total 0, never "
                              "rate_limited or exhausted |");
}

}  // namespace
