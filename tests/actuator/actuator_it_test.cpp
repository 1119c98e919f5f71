// trading-heal-actuator on the testbed: real `systemctl --user` / D-Bus restarts of the
// simulated agents. The test plays the probe (a PUB bound at the health endpoint), the
// diagnoser (a reliable sender to the diagnosis endpoint) and the exporter (a reliable receiver
// at the events endpoint), so it needs no other daemon.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/bed.hpp"
#include "support/process.hpp"
#include "support/wait.hpp"
#include "trading_heal/actuator/systemd.hpp"
#include "trading_heal/common/reliable.hpp"
#include "trading_heal/common/zmq.hpp"

namespace {

using namespace std::chrono_literals;
using trading_heal::test::Bed;
using trading_heal::test::Child;
using trading_heal::test::wait_until;
namespace common = trading_heal::common;
namespace proto = trading_heal::proto;

long main_pid(const std::string& inst) {
  const std::string v =
      Bed::sh_out("systemctl --user show -p MainPID --value crypto-agent@" + inst + ".service");
  return v.empty() ? 0 : std::stol(v);
}

class ActuatorIt : public ::testing::Test {
 protected:
  void SetUp() override {
    Bed::export_env();
    dir_ = std::filesystem::temp_directory_path() /
           ("th-act-it-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ / "run");
    rt_ = (dir_ / "run").string();
    health_ = common::make_socket(ctx_, zmq::socket_type::pub);
    ASSERT_TRUE(common::bind_endpoint(health_, "ipc://" + rt_ + "/probe/health.sock"));
    events_ = std::make_unique<common::ReliableReceiver>(
        ctx_, "ipc://" + rt_ + "/exporter/events.sock", seqs_);
    for (const char* a : {"BTC_USDT", "ETH_USDT", "XRP_USDT", "SOL_USDT"}) {
      ASSERT_GT(main_pid(a), 0) << a << " is not running on the testbed";
    }
  }
  void TearDown() override {
    if (actuator_) {
      actuator_->signal(SIGTERM);
      auto rc = actuator_->wait(5s);
      EXPECT_EQ(rc, 0) << "actuator did not exit 0 within 5 s of SIGTERM";
      actuator_.reset();
    }
    events_.reset();
    health_.close();
    std::filesystem::remove_all(dir_);
  }

  void start(std::map<std::string, std::string> env = {}) {
    std::map<std::string, std::string> e = {
        {"TRADING_HEAL_RUNTIME_DIR", rt_},
        {"TRADING_HEAL_DATA_DIR", (dir_ / "data").string()},
        {"TRADING_HEAL_SYSTEMD_SCOPE", "user"},
        {"TRADING_HEAL_AGENTS", Bed::get("TRADING_HEAL_AGENTS")},
        {"TRADING_HEAL_INTERVAL", "0.5"},
        {"TRADING_HEAL_DIAGNOSIS_WAIT", "0.5"},
        {"TRADING_HEAL_COOLDOWN", "1"},
        {"TRADING_HEAL_RECOVERY_GRACE", "20"},
        {"TRADING_HEAL_GLOBAL_WINDOW", "2"},
        {"TRADING_HEAL_RESTART_TIMEOUT", "15"},
        {"TRADING_HEAL_RESTART_BACKEND", "dbus"},
    };
    for (auto& [k, v] : env) e[k] = v;
    log_.clear();
    actuator_ = std::make_unique<Child>(Child::spawn(
        {"/bin/sh", "-c", "exec \"$0\" 2>&1", Bed::bin("trading-heal-actuator")}, e, true));
    ASSERT_TRUE(wait_until([&] { return logged("actuator ready"); }, 10s)) << log_;
    // The SUB connects to our PUB late (slow joiner): the first cycle may be lost, which the
    // helpers below tolerate by publishing every cycle, as the probe does.
  }

  bool logged(const std::string& s) {
    if (actuator_) log_ = actuator_->output();
    return log_.find(s) != std::string::npos;
  }

  void publish(const std::string& agent, proto::Verdict v, std::uint32_t n,
               std::optional<double> age = 1500) {
    proto::HealthReport r;
    r.agent = agent;
    r.unit = "crypto-agent@" + agent + ".service";
    r.verdict = v;
    r.consecutive_failures = n;
    r.decision_age_seconds = age;
    r.active_state = "active";
    r.sub_state = "running";
    common::send_message(health_, stamp_.stamp(r));
  }

  // Drains delivered audit events into events_seen_.
  void pump_events() {
    while (auto d = events_->receive()) {
      if (auto* e = std::get_if<proto::Event>(&d->msg.body)) seen_.push_back(*e);
      events_->accept(*d);
    }
  }
  std::vector<proto::Event> seen(const std::string& action) {
    pump_events();
    std::vector<proto::Event> out;
    for (const auto& e : seen_) {
      if (e.action == action) out.push_back(e);
    }
    return out;
  }

  // Publishes failing reports for `agents` every 250 ms (the probe's job) until `cond`.
  bool fail_until(const std::vector<std::string>& agents, const std::function<bool()>& cond,
                  std::chrono::milliseconds timeout, proto::Verdict v = proto::Verdict::kStalled) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      ++n_;
      for (const auto& a : agents) publish(a, v, n_);
      if (wait_until(cond, 250ms, 25ms)) return true;
    }
    return false;
  }
  bool healthy_until(const std::vector<std::string>& agents, const std::function<bool()>& cond,
                     std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      for (const auto& a : agents) publish(a, proto::Verdict::kHealthy, 0, 1);
      if (wait_until(cond, 250ms, 25ms)) return true;
    }
    return false;
  }

  proto::Ack command(proto::CommandVerb verb, const std::string& agent) {
    auto s = common::make_socket(ctx_, zmq::socket_type::dealer);
    EXPECT_TRUE(common::connect_endpoint(s, "ipc://" + rt_ + "/actuator/control.sock"));
    proto::Command c;
    c.verb = verb;
    c.agent = agent;
    c.reason = "integration test";
    common::send_message(s, stamp_.stamp(c), zmq::send_flags::none);
    zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(5000));
    zmq::message_t m;
    if (!s.recv(m, zmq::recv_flags::dontwait)) return proto::Ack{"", "", 0, false, "no reply"};
    proto::RejectCounter rc;
    auto msg = common::decode_frame(m, rc);
    if (!msg) return proto::Ack{"", "", 0, false, "bad reply"};
    return std::get<proto::Ack>(msg->body);
  }

  static inline int counter_ = 0;
  std::filesystem::path dir_;
  std::string rt_;
  zmq::context_t ctx_;
  zmq::socket_t health_;
  common::SeqTracker seqs_;
  std::unique_ptr<common::ReliableReceiver> events_;
  common::SystemClock clock_;
  common::Stamper stamp_{"probe", clock_};
  std::unique_ptr<Child> actuator_;
  std::string log_;
  std::vector<proto::Event> seen_;
  std::uint32_t n_ = 0;
};

TEST_F(ActuatorIt, StalledAgentIsRestartedAndRecoversWithoutADiagnoser) {
  start();
  const long before = main_pid("BTC_USDT");
  ASSERT_TRUE(fail_until(
      {"BTC_USDT"}, [&] { return !seen("restart").empty(); }, 20s))
      << log_;
  const long after = main_pid("BTC_USDT");
  EXPECT_NE(after, before);
  EXPECT_GT(after, 0);
  auto r = seen("restart").at(0);
  EXPECT_TRUE(r.success);
  EXPECT_EQ(r.symbol, "BTC-USDT");
  EXPECT_EQ(r.reason, "stalled (age=1500s)");
  EXPECT_FALSE(r.diagnosis);
  EXPECT_EQ(std::get<std::int64_t>(r.fields.at("new_pid")), after);
  EXPECT_TRUE(
      logged("SELF-HEAL: restarting BTC-USDT | reason: stalled (age=1500s) | Ollama: unavailable"))
      << log_;
  ASSERT_TRUE(healthy_until(
      {"BTC_USDT"}, [&] { return !seen("recovered").empty(); }, 10s));
  EXPECT_GT(std::get<double>(seen("recovered").at(0).fields.at("seconds_to_healthy")), 0.0);
  // The control socket is in the actuator's own directory (only it can replace it); anyone may
  // connect, the peer guard decides who may speak (PROTOCOL.md "Who may speak").
  struct stat st {};
  ASSERT_EQ(::stat((rt_ + "/actuator/control.sock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0666);
  ASSERT_EQ(::stat((rt_ + "/actuator").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755);
  auto ack = command(proto::CommandVerb::kStatus, "");
  ASSERT_TRUE(ack.ok) << ack.detail;
  EXPECT_NE(ack.detail.find("\"BTC_USDT\""), std::string::npos);
}

TEST_F(ActuatorIt, ReasonCarriesTheDiagnosisWhenOneComes) {
  start({{"TRADING_HEAL_DIAGNOSIS_WAIT", "30"}, {"TRADING_HEAL_RESTART_BACKEND", "systemctl"}});
  const long before = main_pid("ETH_USDT");
  // Two failing cycles: the actuator now waits (up to 30 s) for the diagnosis.
  for (std::uint32_t n = 1; n <= 2; ++n) {
    publish("ETH_USDT", proto::Verdict::kStalled, n);
    std::this_thread::sleep_for(100ms);  // the probe's cadence, not a wait for a condition
  }
  common::SystemClock clock;
  auto outbox = common::Outbox::open((dir_ / "diag.outbox").string());
  ASSERT_TRUE(outbox);
  common::Stamper ds("diagnoser", clock);
  common::ReliableSender sender(ctx_, "ipc://" + rt_ + "/actuator/diagnosis.sock", **outbox, ds);
  proto::Diagnosis d;
  d.agent = "ETH_USDT";
  d.cause = "DB lock on decisions table";
  d.source = "rules";
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(sender.send(d, clock.mono()));
  ASSERT_TRUE(fail_until(
      {"ETH_USDT"},
      [&] {
        sender.on_readable(clock.mono());
        return !seen("restart").empty();
      },
      20s))
      << log_;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s);  // well before the 30 s deadline
  EXPECT_EQ(seen("restart").at(0).diagnosis, "DB lock on decisions table");
  EXPECT_NE(main_pid("ETH_USDT"), before);
  EXPECT_TRUE(
      logged("SELF-HEAL: restarting ETH-USDT | reason: stalled (age=1500s) | Ollama: DB "
             "lock on decisions table"))
      << log_;
  EXPECT_TRUE(wait_until(
      [&] {
        sender.on_readable(clock.mono());
        return sender.pending() == 0;
      },
      5s));  // the diagnosis was acknowledged
}

TEST_F(ActuatorIt, HourlyBudgetHoldsAcrossKill9) {
  std::map<std::string, std::string> env = {{"TRADING_HEAL_MAX_RESTARTS", "1"},
                                            {"TRADING_HEAL_COOLDOWN", "0.1"}};
  start(env);
  ASSERT_TRUE(fail_until(
      {"XRP_USDT"}, [&] { return !seen("restart").empty(); }, 20s))
      << log_;
  ASSERT_TRUE(healthy_until(
      {"XRP_USDT"}, [&] { return !seen("recovered").empty(); }, 10s));
  actuator_->signal(SIGKILL);
  ASSERT_TRUE(actuator_->wait(5s));
  actuator_.reset();
  start(env);
  n_ = 0;  // a new incident: the probe's count starts again
  const long pid = main_pid("XRP_USDT");
  ASSERT_TRUE(fail_until(
      {"XRP_USDT"}, [&] { return !seen("rate_limited").empty(); }, 15s))
      << log_;
  EXPECT_EQ(std::get<std::string>(seen("rate_limited").at(0).fields.at("limit")), "max_restarts");
  fail_until(
      {"XRP_USDT"}, [] { return false; }, 2s);  // more failing cycles: still nothing
  EXPECT_EQ(main_pid("XRP_USDT"), pid);
  EXPECT_EQ(seen("restart").size(), 1U);
  EXPECT_EQ(seen("rate_limited").size(), 1U);  // one per blocked incident
  healthy_until(
      {"XRP_USDT"}, [&] { return !seen("recovered").empty(); }, 2s);
}

TEST_F(ActuatorIt, FourAgentsStalledTogetherAreOneGlobalIncidentWithOneCanary) {
  start();
  const std::vector<std::string> four = {"BTC_USDT", "ETH_USDT", "XRP_USDT", "SOL_USDT"};
  std::map<std::string, long> before;
  for (const auto& a : four) before[a] = main_pid(a);
  ASSERT_TRUE(fail_until(
      four, [&] { return !seen("restart").empty(); }, 20s))
      << log_;
  fail_until(
      four, [] { return false; }, 3s);  // six more cycles, still failing
  EXPECT_EQ(seen("global_incident").size(), 1U);
  EXPECT_EQ(seen("restart").size(), 1U);
  const std::string canary = seen("restart").at(0).agent;
  EXPECT_EQ(std::get<bool>(seen("restart").at(0).fields.at("canary")), true);
  int changed = 0;
  for (const auto& a : four) changed += main_pid(a) != before[a] ? 1 : 0;
  EXPECT_EQ(changed, 1);
  // The canary recovers: the next one is released.
  std::vector<std::string> rest;
  for (const auto& a : four) {
    if (a != canary) rest.push_back(a);
  }
  const auto end = std::chrono::steady_clock::now() + 20s;
  while (seen("restart").size() < 2 && std::chrono::steady_clock::now() < end) {
    publish(canary, proto::Verdict::kHealthy, 0, 1);
    ++n_;
    for (const auto& a : rest) publish(a, proto::Verdict::kStalled, n_);
    wait_until([] { return false; }, 250ms);
  }
  ASSERT_EQ(seen("restart").size(), 2U) << log_;
  EXPECT_NE(seen("restart").at(1).agent, canary);
  healthy_until(
      four, [] { return false; }, 1s);
}

TEST_F(ActuatorIt, HostileMessagesRestartNothingAndCrashNothing) {
  start({{"TRADING_HEAL_DIAGNOSIS_WAIT", "0.1"}});
  std::map<std::string, long> before;
  for (const auto& a : {"BTC_USDT", "ETH_USDT", "XRP_USDT", "SOL_USDT", "DOGE_USDT", "ADA_USDT"}) {
    before[a] = main_pid(a);
  }
  auto sub = common::make_socket(ctx_, zmq::socket_type::sub);
  sub.set(zmq::sockopt::subscribe, "");
  ASSERT_TRUE(common::connect_endpoint(sub, "ipc://" + rt_ + "/actuator/pub.sock"));
  auto diag =
      common::make_socket(ctx_, zmq::socket_type::dealer, {.max_msg_size = 64LL * 1024 * 1024});
  ASSERT_TRUE(common::connect_endpoint(diag, "ipc://" + rt_ + "/actuator/diagnosis.sock"));
  auto ctl =
      common::make_socket(ctx_, zmq::socket_type::dealer, {.max_msg_size = 64LL * 1024 * 1024});
  ASSERT_TRUE(common::connect_endpoint(ctl, "ipc://" + rt_ + "/actuator/control.sock"));
  std::mt19937 rng(7);
  std::string junk(4096, '\0');
  for (auto& c : junk) c = static_cast<char>(rng());
  const std::string huge(10 * 1024 * 1024, '\x91');
  for (int cycle = 1; cycle <= 8; ++cycle) {
    for (const char* bad : {"NOPE_USDT", "BTC_USDT.service sshd", "../x", "sshd"}) {
      publish(bad, proto::Verdict::kDown, static_cast<std::uint32_t>(cycle + 5));
      proto::Diagnosis d;
      d.agent = bad;
      d.cause = "x";
      common::send_message(diag, stamp_.stamp(d));
      proto::Command c;
      c.verb = proto::CommandVerb::kResume;
      c.agent = bad;
      common::send_message(ctl, stamp_.stamp(c));
    }
    // A report naming a real agent but another unit.
    proto::HealthReport r;
    r.agent = "BTC_USDT";
    r.unit = "sshd.service";
    r.verdict = proto::Verdict::kDown;
    r.consecutive_failures = 9;
    common::send_message(health_, stamp_.stamp(r));
    for (zmq::socket_t* s : {&health_, &diag, &ctl}) {
      s->send(zmq::buffer(junk), zmq::send_flags::dontwait);
      s->send(zmq::buffer(huge), zmq::send_flags::dontwait);
    }
    std::this_thread::sleep_for(250ms);  // the probe's cadence
  }
  // Still alive and answering; the rejections were counted.
  ASSERT_TRUE(actuator_->running());
  std::int64_t unknown = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        zmq::message_t m;
        while (sub.recv(m, zmq::recv_flags::dontwait)) {
          proto::RejectCounter rc;
          auto msg = common::decode_frame(m, rc);
          if (!msg) continue;
          if (auto* hb = std::get_if<proto::Heartbeat>(&msg->body)) {
            unknown = std::get<std::int64_t>(hb->stats.at("rejected.unknown_agent"));
          }
        }
        return unknown >= 8;
      },
      5s))
      << "rejected.unknown_agent=" << unknown;
  auto ack = command(proto::CommandVerb::kStatus, "");
  EXPECT_TRUE(ack.ok) << ack.detail;
  EXPECT_FALSE(command(proto::CommandVerb::kPause, "../x").ok);
  for (const auto& [a, pid] : before) EXPECT_EQ(main_pid(a), pid) << a;
  EXPECT_TRUE(seen("restart").empty());
  EXPECT_TRUE(actuator_->running());
}

}  // namespace

namespace {

// The D-Bus backend on the real user bus, its dbus-daemon restarted between two calls and
// nothing processing the connection in between (the hangup is only found by the next call):
// the call fails on the lost connection, is retried at once on a new one and succeeds; the loss
// is counted once. Then a restart through the new connection works (JobRemoved resubscribed).
TEST(DbusManagerIt, ACallAfterTheBusRestartedIsRetriedOnANewConnection) {
  Bed::export_env();
  namespace act = trading_heal::actuator;
  auto units = act::make_dbus_manager(common::SystemdScope::kUser);
  const std::string unit = "crypto-agent@SOL_USDT.service";
  auto before = units->status(unit);
  ASSERT_TRUE(before) << before.error();
  EXPECT_EQ(before->active_state, "active");
  EXPECT_EQ(units->connection_losses(), 0U);

  ASSERT_EQ(Bed::sh("systemctl --user restart dbus.service"), 0);
  auto after = units->status(unit);
  ASSERT_TRUE(after) << after.error();
  EXPECT_EQ(after->main_pid, before->main_pid);
  EXPECT_EQ(units->connection_losses(), 1U);

  ASSERT_TRUE(units->restart(unit, 15s));
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = units->status(unit);
        return s && s->active_state == "active" && s->main_pid != before->main_pid &&
               s->main_pid != 0;
      },
      15s, 50ms));
  EXPECT_EQ(units->connection_losses(), 1U);
}

}  // namespace
