// The testbed itself: simulated agents under a real systemd user manager, journald and
// PostgreSQL behave the way trading-heal expects the operators' agents to behave.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <pqxx/pqxx>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "bed/agent_sim/fake_secrets.hpp"
#include "support/bed.hpp"
#include "support/wait.hpp"

namespace {

using namespace std::chrono_literals;
using trading_heal::test::Bed;
using trading_heal::test::wait_until;

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, sep);) out.push_back(part);
  return out;
}

std::string unit(const std::string& inst) { return "crypto-agent@" + inst + ".service"; }

std::string symbol(const std::string& inst) {  // BTC_USDT[_profile] -> BTC-USDT
  const auto parts = split(inst, '_');
  return parts.size() > 1 ? parts[0] + "-" + parts[1] : parts[0];
}

std::string bed_sh(const std::string& args) {
  return "'" + Bed::source_dir() + "/tests/bed/bed.sh' " + args;
}

long rows(const std::string& sym) {  // through the probe's read-only role
  pqxx::connection c(Bed::get("DATABASE_URL"));
  pqxx::read_transaction t(c);
  return t.exec_params1("SELECT count(*) FROM btc.decisions WHERE symbol = $1", sym)[0].as<long>();
}

std::string prop(const std::string& inst, const std::string& name) {
  return Bed::sh_out("systemctl --user show -p " + name + " --value " + unit(inst));
}

long main_pid(const std::string& inst) {
  const std::string v = prop(inst, "MainPID");
  return v.empty() ? 0 : std::stol(v);
}

bool alive(long pid) { return pid > 0 && ::kill(static_cast<pid_t>(pid), 0) == 0; }

// Everything one process of the unit logged (the journal keeps earlier beds' lines too).
std::string journal_of(const std::string& inst, long pid) {
  return Bed::sh_out("journalctl --no-pager -o cat _SYSTEMD_UNIT=" + unit(inst) +
                     " _PID=" + std::to_string(pid));
}

int count(const std::string& hay, const std::string& needle) {
  int n = 0;
  for (auto pos = hay.find(needle); pos != std::string::npos; pos = hay.find(needle, pos + 1)) ++n;
  return n;
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

double heartbeat(const std::string& inst) {
  std::string safe = symbol(inst);
  for (char& c : safe) c = c == '-' ? '_' : c;
  std::ifstream in(Bed::get("TRADING_HEAL_HEARTBEAT_DIR") + "/crypto_agent_" + safe + "_heartbeat");
  double v = 0;
  in >> v;
  return v;
}

double epoch_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

class TestbedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    agents_ = split(Bed::get("TRADING_HEAL_AGENTS"), ',');
    if (agents_.size() < 2) GTEST_SKIP() << "these tests need at least two agents on the bed";
  }

  // Leaves every agent the test touched healthy again: no fault, default restart policy,
  // running, writing rows.
  void TearDown() override {
    Bed::sh(bed_sh("pg-start") + " 2>/dev/null");  // no-op unless a test stopped PostgreSQL
    for (const auto& inst : touched_) {
      Bed::sh(bed_sh("fault " + inst + " ok") + " 2>/dev/null");
      Bed::sh("rm -rf \"$XDG_CONFIG_HOME/systemd/user/" + unit(inst) +
              ".d\" && systemctl --user daemon-reload && systemctl --user reset-failed " +
              unit(inst) + " 2>/dev/null; systemctl --user start " + unit(inst));
    }
    for (const auto& inst : touched_) {
      const long before = rows(symbol(inst));
      EXPECT_TRUE(wait_until([&] { return rows(symbol(inst)) > before; }, 20s))
          << inst << " did not write rows again after the test";
    }
  }

  const std::string& agent(size_t i) {
    touched_.insert(agents_[i % agents_.size()]);
    return agents_[i % agents_.size()];
  }

  static void fault(const std::string& inst, const std::string& spec) {
    ASSERT_EQ(0, Bed::sh(bed_sh("fault " + inst + " " + spec)));
  }

  std::vector<std::string> agents_;
  std::set<std::string> touched_;
};

TEST(AgentSimCli, HelpAndBadInstance) {
  const std::string sim = Bed::bin("trading-heal-agent-sim");
  EXPECT_EQ(0, Bed::sh("'" + sim + "' --help >/dev/null"));
  EXPECT_EQ(78, Bed::sh("'" + sim + "' trading_agent.py 'BTC__USDT' 2>/dev/null"));
  EXPECT_EQ(78, Bed::sh("'" + sim + "' 'BTC;rm' 2>/dev/null"));
}

TEST_F(TestbedTest, EveryAgentWritesRowsAndHeartbeats) {
  for (const auto& inst : agents_) {
    EXPECT_EQ("active", prop(inst, "ActiveState")) << inst;
  }
  std::vector<long> before;
  for (const auto& inst : agents_) before.push_back(rows(symbol(inst)));
  EXPECT_TRUE(wait_until(
      [&] {
        for (size_t i = 0; i < agents_.size(); ++i) {
          if (rows(symbol(agents_[i])) <= before[i]) return false;
        }
        return true;
      },
      20s));
  for (const auto& inst : agents_) {
    EXPECT_NEAR(heartbeat(inst), epoch_now(), 10.0) << inst;
  }
}

TEST_F(TestbedTest, StallStopsRowsButNotTheProcessAndRestartHeals) {
  const std::string inst = agent(0);
  const std::string other = agent(1);
  const long pid = main_pid(inst);
  const long other_pid = main_pid(other);
  ASSERT_TRUE(alive(pid));

  fault(inst, "stall");
  ASSERT_TRUE(
      wait_until([&] { return contains(journal_of(inst, pid), "Price unavailable"); }, 15s));
  const long frozen = rows(symbol(inst));
  const double frozen_heartbeat = heartbeat(inst);
  const long other_before = rows(symbol(other));
  // Three more loops of the stalled agent.
  ASSERT_TRUE(
      wait_until([&] { return count(journal_of(inst, pid), "Price unavailable") >= 4; }, 15s));
  EXPECT_EQ(frozen, rows(symbol(inst)));
  EXPECT_EQ(frozen_heartbeat, heartbeat(inst));
  EXPECT_EQ(pid, main_pid(inst));
  EXPECT_TRUE(alive(pid));
  EXPECT_EQ("active", prop(inst, "ActiveState"));
  EXPECT_GT(rows(symbol(other)), other_before);

  // What the supervisor collects for the diagnosis.
  const std::string tail = Bed::sh_out("journalctl -u crypto-agent@" + inst + " -n 50 --no-pager");
  EXPECT_TRUE(contains(tail, "WARNING | ⚠️ Price unavailable")) << tail;
  EXPECT_TRUE(contains(tail, "ERROR | ❌ Loop error: psycopg2.OperationalError")) << tail;

  ASSERT_EQ(0, Bed::sh("systemctl --user restart " + unit(inst)));
  const long new_pid = main_pid(inst);
  EXPECT_TRUE(alive(new_pid));
  EXPECT_NE(pid, new_pid);
  EXPECT_TRUE(wait_until([&] { return rows(symbol(inst)) > frozen; }, 20s));
  EXPECT_GT(heartbeat(inst), frozen_heartbeat);
  EXPECT_EQ(other_pid, main_pid(other));
  const std::string old_log = journal_of(inst, pid);
  EXPECT_TRUE(contains(old_log, "📡 Received signal 15, stopping...")) << old_log;
  EXPECT_TRUE(contains(old_log, "✅ Agent stopped")) << old_log;
}

TEST_F(TestbedTest, StickyFaultSurvivesRestart) {
  const std::string inst = agent(2);
  fault(inst, "stall sticky");
  const long pid = main_pid(inst);
  ASSERT_TRUE(
      wait_until([&] { return contains(journal_of(inst, pid), "Price unavailable"); }, 15s));
  ASSERT_EQ(0, Bed::sh("systemctl --user restart " + unit(inst)));
  const long new_pid = main_pid(inst);
  ASSERT_NE(pid, new_pid);
  ASSERT_TRUE(
      wait_until([&] { return contains(journal_of(inst, new_pid), "Price unavailable"); }, 15s));
  const long frozen = rows(symbol(inst));
  ASSERT_TRUE(
      wait_until([&] { return count(journal_of(inst, new_pid), "Price unavailable") >= 3; }, 15s));
  EXPECT_EQ(frozen, rows(symbol(inst)));

  fault(inst, "ok");  // the control file is read every loop: no restart needed
  EXPECT_TRUE(wait_until([&] { return rows(symbol(inst)) > frozen; }, 15s));
  EXPECT_EQ(new_pid, main_pid(inst));
}

TEST_F(TestbedTest, CrashExitsWithStatusOneAndTraceback) {
  const std::string inst = agent(3);
  ASSERT_EQ(0, Bed::sh(bed_sh("restart-policy " + inst + " no")));
  const long pid = main_pid(inst);
  fault(inst, "crash");
  ASSERT_TRUE(wait_until([&] { return prop(inst, "ActiveState") == "failed"; }, 15s));
  EXPECT_EQ("exit-code", prop(inst, "Result"));
  EXPECT_EQ("1", prop(inst, "ExecMainStatus"));
  EXPECT_FALSE(alive(pid));
  const std::string log = journal_of(inst, pid);
  EXPECT_TRUE(contains(log, "Traceback (most recent call last):")) << log;
  EXPECT_TRUE(log.ends_with("KeyError: 'close'")) << log;
  // The manager's own lines about the unit carry USER_UNIT= (not _SYSTEMD_UNIT=) on the bed.
  EXPECT_TRUE(wait_until(
      [&] {
        return contains(
            Bed::sh_out("journalctl --no-pager -o cat USER_UNIT=" + unit(inst) + " -n 20"),
            "Main process exited, code=exited, status=1/FAILURE");
      },
      5s));
}

TEST_F(TestbedTest, SigtermStopsPromptlyEvenWhenHung) {
  const std::string inst = agent(4);
  const long pid = main_pid(inst);
  fault(inst, "hang");
  // Hung: the heartbeat goes stale while the process lives.
  ASSERT_TRUE(wait_until([&] { return epoch_now() - heartbeat(inst) > 3.0; }, 15s));
  EXPECT_TRUE(alive(pid));
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(0, Bed::sh("systemctl --user stop " + unit(inst)));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_EQ("inactive", prop(inst, "ActiveState"));
  EXPECT_EQ("success", prop(inst, "Result"));  // what the probe calls STOPPED
  const std::string log = journal_of(inst, pid);
  EXPECT_TRUE(contains(log, "| INFO | 📡 Received signal 15, stopping...")) << log;
  EXPECT_TRUE(contains(log, "| INFO | ✅ Agent stopped")) << log;
}

TEST_F(TestbedTest, LeakedSecretsReachTheJournal) {
  using namespace trading_heal::agent_sim;
  const std::string inst = agent(1);
  const long pid = main_pid(inst);
  const long before = rows(symbol(inst));
  fault(inst, "leak-secrets");
  ASSERT_TRUE(wait_until([&] { return contains(journal_of(inst, pid), kLeakTelegramToken); }, 15s));
  const std::string log = journal_of(inst, pid);
  for (const char* secret :
       {kLeakDsn, kLeakKucoinApiKey, kLeakApiSecret, kLeakPassphrase, kLeakBearerToken}) {
    EXPECT_TRUE(contains(log, secret)) << secret;
  }
  EXPECT_TRUE(wait_until([&] { return rows(symbol(inst)) > before + 1; }, 15s));
}

TEST_F(TestbedTest, DatabaseDownKeepsTheHeartbeatGoing) {
  const std::string inst = agent(0);
  const long pid = main_pid(inst);
  ASSERT_EQ(0, Bed::sh(bed_sh("pg-stop")));
  const bool logged = wait_until(
      [&] {
        return contains(journal_of(inst, pid),
                        "ERROR | ❌ Loop error: could not connect to server: Connection refused");
      },
      15s);
  const double hb = heartbeat(inst);
  const bool beating = wait_until([&] { return heartbeat(inst) > hb; }, 10s);
  ASSERT_EQ(0, Bed::sh(bed_sh("pg-start")));
  EXPECT_TRUE(logged);
  EXPECT_TRUE(beating);
  const long after_restart = rows(symbol(inst));
  EXPECT_TRUE(wait_until([&] { return rows(symbol(inst)) > after_restart; }, 15s));
  EXPECT_EQ(pid, main_pid(inst));
}

}  // namespace
