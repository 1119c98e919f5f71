#include "trading_heal/actuator/restarter.hpp"

#include <thread>

#include "trading_heal/actuator/spawn.hpp"

namespace trading_heal::actuator {
namespace {

std::vector<std::string> hook_env(const RestartDecision& d, const std::string& phase) {
  return {
      "TRADING_HEAL_AGENT=" + d.agent,       "TRADING_HEAL_UNIT=" + d.unit,
      "TRADING_HEAL_REASON=" + d.reason,     "TRADING_HEAL_DIAGNOSIS=" + d.diagnosis.value_or(""),
      "TRADING_HEAL_INCIDENT=" + d.incident, "TRADING_HEAL_HOOK=" + phase};
}

}  // namespace

Restarter::Restarter(std::unique_ptr<UnitManager> units, RestartOptions opts)
    : units_(std::move(units)), opts_(std::move(opts)) {}

RestartResult Restarter::run(const RestartDecision& d) {
  const auto t0 = std::chrono::steady_clock::now();
  RestartResult res;
  res.agent = d.agent;
  res.dry_run = opts_.dry_run;
  res.old_pid = d.old_pid;
  auto finish = [&](Outcome o, std::string detail) {
    res.outcome = o;
    res.detail = std::move(detail);
    res.elapsed_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return res;
  };

  if (!opts_.pre_hook.empty()) {
    auto r = run_program(split_argv(opts_.pre_hook), opts_.hook_timeout,
                         {.extra = hook_env(d, "pre"), .from = EnvFrom::kMinimal});
    if (!r.ok()) return finish(Outcome::kDeferred, "pre-restart hook " + r.describe());
  }
  auto before = units_->status(d.unit);
  if (before) res.old_pid = before->main_pid;
  if (opts_.dry_run) return finish(Outcome::kRestarted, "dry run: restart not performed");

  bool reset = false;
  if (auto r = restart(d, before ? before->active_state == "failed" : false, reset); !r) {
    res.reset_failed = reset;
    return finish(Outcome::kFailed, r.error());
  }
  res.reset_failed = reset;
  auto pid = verify(d.unit, res.old_pid);
  if (!pid) return finish(Outcome::kFailed, pid.error());
  res.new_pid = *pid;
  std::string detail =
      "active with new MainPID " + std::to_string(res.new_pid) + " via " + units_->name();
  if (!opts_.post_hook.empty()) {
    auto h = run_program(split_argv(opts_.post_hook), opts_.hook_timeout,
                         {.extra = hook_env(d, "post"), .from = EnvFrom::kMinimal});
    if (!h.ok()) detail += "; post-restart hook " + h.describe();
  }
  return finish(Outcome::kRestarted, detail);
}

tl::expected<void, std::string> Restarter::restart(const RestartDecision& d, bool failed,
                                                   bool& reset) {
  if (d.reset_failed || failed) {
    if (auto r = units_->reset_failed(d.unit); !r) return r;
    reset = true;
  }
  auto r = units_->restart(d.unit, opts_.job_timeout);
  if (r || reset) return r;
  // Refused because the unit hit its own StartLimitBurst: reset, then one more try (the same
  // restart in our budget).
  auto now = units_->status(d.unit);
  if (now && (now->result == "start-limit-hit" || now->active_state == "failed")) {
    if (auto rf = units_->reset_failed(d.unit); rf) {
      reset = true;
      r = units_->restart(d.unit, opts_.job_timeout);
    }
  }
  return r;
}

tl::expected<std::uint32_t, std::string> Restarter::verify(const std::string& unit,
                                                           std::uint32_t old_pid) {
  const auto deadline = std::chrono::steady_clock::now() + opts_.verify_timeout;
  UnitStatus last;
  while (true) {
    if (auto s = units_->status(unit)) {
      last = *s;
      if (s->active_state == "active" && s->main_pid != 0 && s->main_pid != old_pid) {
        return s->main_pid;
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return tl::unexpected("not active with a new MainPID in time (state=" + last.active_state +
                            "/" + last.sub_state + " pid=" + std::to_string(last.main_pid) + ")");
    }
    std::this_thread::sleep_for(opts_.verify_step);
  }
}

}  // namespace trading_heal::actuator
