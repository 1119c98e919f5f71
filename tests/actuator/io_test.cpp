// The actuator's effectful pieces with fakes and local programs: spawning without a shell,
// the state file, the systemctl argv, and the Restarter's sequence against a fake systemd.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>

#include "trading_heal/actuator/restarter.hpp"
#include "trading_heal/actuator/spawn.hpp"
#include "trading_heal/actuator/state_file.hpp"
#include "trading_heal/actuator/systemd.hpp"
#include "trading_heal/actuator/worker.hpp"

namespace trading_heal::actuator {
namespace {

using namespace std::chrono_literals;

TEST(Spawn, RunsAnArgvWithoutAShell) {
  auto r = run_program({"echo", "a;b", "$HOME", "`id`"}, 5s);
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out, "a;b $HOME `id`\n");
}

TEST(Spawn, PassesEnvironmentAndExitCodes) {
  auto r = run_program({"sh", "-c", "printf %s \"$TRADING_HEAL_AGENT\"; exit 3"}, 5s,
                       {.extra = {"TRADING_HEAL_AGENT=BTC_USDT"}});
  EXPECT_EQ(r.out, "BTC_USDT");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_FALSE(r.ok());
}

TEST(Spawn, KillsAtTheDeadline) {
  auto r = run_program({"sleep", "10"}, 200ms);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + SIGKILL) << "killed, not waited for";
}

TEST(Spawn, MissingProgramIsReported) {
  auto r = run_program({"/nonexistent/hook"}, 1s);
  EXPECT_FALSE(r.started);
  EXPECT_FALSE(r.ok());
}

TEST(Systemctl, ArgvIsExactAndNeverAShell) {
  using common::SystemdScope;
  EXPECT_EQ(systemctl_argv(SystemdScope::kSystem, "restart", "crypto-agent@BTC_USDT.service"),
            (std::vector<std::string>{"systemctl", "restart", "crypto-agent@BTC_USDT.service"}));
  EXPECT_EQ(
      systemctl_argv(SystemdScope::kUser, "reset-failed", "crypto-agent@A.service"),
      (std::vector<std::string>{"systemctl", "--user", "reset-failed", "crypto-agent@A.service"}));
  auto s = parse_show("ActiveState=active\nSubState=running\nResult=success\nMainPID=42\n");
  EXPECT_EQ(s.active_state, "active");
  EXPECT_EQ(s.main_pid, 42U);
  EXPECT_EQ(split_argv("  /usr/bin/check  --agent  x "),
            (std::vector<std::string>{"/usr/bin/check", "--agent", "x"}));
}

TEST(StateFile, AtomicWriteReadAndQuarantine) {
  auto dir =
      std::filesystem::temp_directory_path() / ("th-act-state-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "actuator-state.json").string();
  auto none = read_state_file(path);
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
  ASSERT_TRUE(write_state_file(path, "{\"a\":1}"));
  ASSERT_TRUE(write_state_file(path, "{\"a\":2}"));
  EXPECT_EQ(**read_state_file(path), "{\"a\":2}");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  const auto aside = quarantine_state_file(path, "1");
  EXPECT_TRUE(std::filesystem::exists(aside));
  EXPECT_FALSE(std::filesystem::exists(path));
  std::filesystem::remove_all(dir);
}

// systemd as a script: records calls; restart gives a new pid unless told otherwise.
class FakeUnits final : public UnitManager {
 public:
  explicit FakeUnits(std::vector<std::string>* calls) : calls_(calls) {}
  tl::expected<UnitStatus, std::string> status(const std::string&) override {
    return UnitStatus{state, "running", result, pid};
  }
  tl::expected<void, std::string> restart(const std::string& unit,
                                          std::chrono::milliseconds) override {
    calls_->push_back("restart " + unit);
    if (refuse_restarts > 0) {
      --refuse_restarts;
      state = "failed";
      result = "start-limit-hit";
      return tl::unexpected(std::string("start request repeated too quickly"));
    }
    state = "active";
    if (new_pid) pid += 1;
    return {};
  }
  tl::expected<void, std::string> reset_failed(const std::string& unit) override {
    calls_->push_back("reset-failed " + unit);
    result = "success";
    return {};
  }
  std::string name() const override { return "fake"; }
  std::string state = "active";
  std::string result = "success";
  std::uint32_t pid = 100;
  bool new_pid = true;
  int refuse_restarts = 0;

 private:
  std::vector<std::string>* calls_;
};

RestartDecision decision() {
  RestartDecision d;
  d.agent = "BTC_USDT";
  d.unit = "crypto-agent@BTC_USDT.service";
  d.reason = "stalled (age=1500s)";
  return d;
}

TEST(Restarter, RestartsAndVerifiesANewMainPid) {
  std::vector<std::string> calls;
  Restarter r(std::make_unique<FakeUnits>(&calls), RestartOptions{});
  auto res = r.run(decision());
  EXPECT_EQ(res.outcome, Outcome::kRestarted) << res.detail;
  EXPECT_EQ(res.old_pid, 100U);
  EXPECT_EQ(res.new_pid, 101U);
  EXPECT_EQ(calls, (std::vector<std::string>{"restart crypto-agent@BTC_USDT.service"}));
}

TEST(Restarter, SamePidAfterTheRestartIsAFailure) {
  std::vector<std::string> calls;
  auto units = std::make_unique<FakeUnits>(&calls);
  units->new_pid = false;
  RestartOptions o;
  o.verify_timeout = 200ms;
  o.verify_step = 20ms;
  Restarter r(std::move(units), o);
  auto res = r.run(decision());
  EXPECT_EQ(res.outcome, Outcome::kFailed);
  EXPECT_NE(res.detail.find("new MainPID"), std::string::npos);
}

TEST(Restarter, StartLimitHitIsResetThenRestartedOnce) {
  std::vector<std::string> calls;
  auto units = std::make_unique<FakeUnits>(&calls);
  units->refuse_restarts = 1;  // refused: the unit is left failed with start-limit-hit
  Restarter r(std::move(units), RestartOptions{});
  auto res = r.run(decision());
  EXPECT_EQ(res.outcome, Outcome::kRestarted) << res.detail;
  EXPECT_TRUE(res.reset_failed);
  EXPECT_EQ(calls, (std::vector<std::string>{"restart crypto-agent@BTC_USDT.service",
                                             "reset-failed crypto-agent@BTC_USDT.service",
                                             "restart crypto-agent@BTC_USDT.service"}));

  // Known failed beforehand (the probe said so): reset first.
  calls.clear();
  auto failed = std::make_unique<FakeUnits>(&calls);
  failed->state = "failed";
  Restarter r2(std::move(failed), RestartOptions{});
  EXPECT_EQ(r2.run(decision()).outcome, Outcome::kRestarted);
  EXPECT_EQ(calls.at(0), "reset-failed crypto-agent@BTC_USDT.service");
}

TEST(Restarter, FailingPreHookDefersAndDryRunRestartsNothing) {
  std::vector<std::string> calls;
  RestartOptions o;
  o.pre_hook = "false";
  Restarter r(std::make_unique<FakeUnits>(&calls), o);
  auto res = r.run(decision());
  EXPECT_EQ(res.outcome, Outcome::kDeferred);
  EXPECT_TRUE(calls.empty());

  RestartOptions dry;
  dry.dry_run = true;
  dry.pre_hook = "true";
  Restarter r2(std::make_unique<FakeUnits>(&calls), dry);
  auto res2 = r2.run(decision());
  EXPECT_EQ(res2.outcome, Outcome::kRestarted);
  EXPECT_TRUE(res2.dry_run);
  EXPECT_TRUE(calls.empty());
}

// Hooks see the agent and the reason, and of the daemon's environment only PATH and the like:
// not a setting, not a secret.
TEST(Restarter, HooksSeeTheAgentAndReasonAndNoSecret) {
  ::setenv("POSTGRES_PASSWORD", "planted-hook-secret", 1);
  ::setenv("TRADING_HEAL_INTERVAL", "30", 1);
  auto dir = std::filesystem::temp_directory_path() / ("th-act-hook-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto script = dir / "hook.sh";
  {
    std::ofstream f(script);
    f << "#!/bin/sh\necho \"$TRADING_HEAL_HOOK $TRADING_HEAL_AGENT $TRADING_HEAL_REASON "
         "[$POSTGRES_PASSWORD$TRADING_HEAL_INTERVAL] ${PATH:+path}\" >> "
      << (dir / "out").string() << "\n";
  }
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  std::vector<std::string> calls;
  RestartOptions o;
  o.pre_hook = script.string();
  o.post_hook = script.string();
  Restarter r(std::make_unique<FakeUnits>(&calls), o);
  EXPECT_EQ(r.run(decision()).outcome, Outcome::kRestarted);
  std::ifstream in(dir / "out");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(
      all, "pre BTC_USDT stalled (age=1500s) [] path\npost BTC_USDT stalled (age=1500s) [] path\n");
  ::unsetenv("POSTGRES_PASSWORD");
  ::unsetenv("TRADING_HEAL_INTERVAL");
  std::filesystem::remove_all(dir);
}

// A manager with a connection to keep processed: idle() counts its calls and "finds" a lost
// connection each time its fd was readable.
class IdleUnits final : public UnitManager {
 public:
  // The calls of idle(), which the test waits for.
  struct Calls {
    std::mutex mu;
    std::condition_variable cv;
    int n = 0;
    bool wait_beyond(int seen) {
      std::unique_lock lock(mu);
      return cv.wait_for(lock, 5s, [&] { return n > seen; });
    }
    int count() {
      std::lock_guard lock(mu);
      return n;
    }
  };
  IdleUnits(Calls* idles, int fd) : idles_(idles), fd_(fd) {}
  tl::expected<UnitStatus, std::string> status(const std::string&) override {
    return UnitStatus{"active", "running", "success", pid_};
  }
  tl::expected<void, std::string> restart(const std::string&, std::chrono::milliseconds) override {
    ++pid_;
    return {};
  }
  tl::expected<void, std::string> reset_failed(const std::string&) override { return {}; }
  std::string name() const override { return "idle-fake"; }
  int idle_fd() const override { return fd_; }
  std::optional<std::chrono::milliseconds> idle() override {
    std::uint64_t n = 0;
    if (::read(fd_, &n, sizeof n) == sizeof n) ++losses_;
    {
      std::lock_guard lock(idles_->mu);
      ++idles_->n;
    }
    idles_->cv.notify_all();
    return std::nullopt;
  }
  std::uint64_t connection_losses() const override { return losses_; }

 private:
  Calls* idles_;
  int fd_;
  std::uint32_t pid_ = 100;
  std::uint64_t losses_ = 0;
};

// Between jobs the worker keeps the manager's connection processed (idle() whenever its fd is
// readable), so a connection is never left alone until the next restart; what idle() finds
// reaches the loop thread.
TEST(RestartWorker, ServesTheManagersIdleWorkBetweenJobs) {
  const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  ASSERT_GE(fd, 0);
  IdleUnits::Calls idles;
  {
    RestartWorker w([&]() -> tl::expected<std::unique_ptr<Restarter>, std::string> {
      RestartOptions o;
      o.verify_step = 1ms;
      return std::make_unique<Restarter>(std::make_unique<IdleUnits>(&idles, fd), o);
    });
    ASSERT_TRUE(idles.wait_beyond(0)) << "idle() not run before the first job";
    const int before = idles.count();
    const std::uint64_t one = 1;
    ASSERT_EQ(::write(fd, &one, sizeof one), static_cast<ssize_t>(sizeof one));
    ASSERT_TRUE(idles.wait_beyond(before)) << "idle() not run on a readable fd";
    w.submit(decision());
    pollfd results_ready{w.fd(), POLLIN, 0};
    ASSERT_EQ(::poll(&results_ready, 1, 5000), 1) << "no result";
    const auto results = w.take_results();
    ASSERT_EQ(results.size(), 1U);
    EXPECT_EQ(w.queued(), 0U);
    EXPECT_EQ(w.bus_losses(), 1U) << "what idle() found did not reach the loop thread";
    EXPECT_EQ(results.front().outcome, Outcome::kRestarted) << results.front().detail;
  }
  ::close(fd);
}

}  // namespace
}  // namespace trading_heal::actuator
