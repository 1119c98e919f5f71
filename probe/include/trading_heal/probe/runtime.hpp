// The probe daemon's moving parts behind main.cpp: the D-Bus connection (replaced when lost),
// the PostgreSQL worker,
// the Prober and the cycle schedule, driven by the loop (ticks, bus and database fds), with
// callbacks that publish. Logs. Not thread-safe: owned by the loop thread.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "trading_heal/common/bus.hpp"
#include "trading_heal/common/clock.hpp"
#include "trading_heal/common/config.hpp"
#include "trading_heal/probe/pg_store.hpp"
#include "trading_heal/probe/prober.hpp"
#include "trading_heal/probe/schedule.hpp"
#include "trading_heal/probe/systemd_bus.hpp"
#include "trading_heal/probe/threshold_learner.hpp"

namespace trading_heal::probe {

class Runtime {
 public:
  Runtime(const common::Config& cfg, ProbeOptions opts);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  std::function<void(const proto::HealthReport&)> on_report;
  std::function<void(const proto::Heartbeat&)> on_heartbeat;
  std::function<void(const proto::Event&)> on_event;
  // The bus connection's fd changed (old, new; -1 for none): the loop watches the new one.
  std::function<void(int, int)> on_bus_fd;
  // The peer guard's refusals so far, for the heartbeat (set by main).
  std::function<std::uint64_t()> peers_refused;

  int bus_fd() const;  // -1 without a bus
  int db_fd() const;
  int learn_fd() const;  // -1 unless TRADING_HEAL_STALL_THRESHOLD=auto
  // Loop callbacks; each returns the next moment the runtime needs a tick.
  common::MonoTime on_tick(const common::Clock& clock);
  common::MonoTime on_bus(const common::Clock& clock);
  common::MonoTime on_db(const common::Clock& clock);
  // A learning's answer (auto thresholds): applied on the loop (the query ran on its worker).
  common::MonoTime on_learn(const common::Clock& clock);

  // One blocking cycle (for --once): the reports of every enabled agent.
  std::vector<proto::HealthReport> run_once(const common::Clock& clock);

  std::uint64_t cycles() const { return schedule_.cycles(); }
  // Bus connections found lost so far (each replaced by a new one, signals resubscribed).
  std::uint64_t bus_losses() const { return reconnect_.losses(); }
  void count_publish_drop() { ++publish_drops_; }

 private:
  void finish_cycle(const std::optional<FleetAnswer>& answer, const common::Clock& clock);
  // `trigger`: what made the check (cycle, deadline, signal), for the log.
  void publish(const std::vector<proto::HealthReport>& reports, const char* trigger);
  // Agents whose deadline passed: checked with a query of their own (one for all due together),
  // or by the running cycle.
  void run_deadlines(const common::Clock& clock);
  void finish_check(const std::optional<FleetAnswer>& answer, const common::Clock& clock);
  void note_db_state();
  // Drops a lost bus connection; connect_bus() opens a new one and resubscribes the signals.
  void lose_bus(const std::string& why, common::MonoTime now);
  bool connect_bus(common::MonoTime now);
  void drain_bus(common::MonoTime now);
  common::MonoTime next_deadline() const;
  // Starts a learning when one is due (at start, then hourly after each answer).
  void maybe_learn(const common::Clock& clock);
  void apply_learning(const LearnAnswer& answer, const common::Clock& clock);

  const common::Config& cfg_;
  std::unique_ptr<SystemdBus> bus_;
  std::unique_ptr<PgStore> pg_;
  std::unique_ptr<Prober> prober_;
  std::unique_ptr<ThresholdLearner> learner_;  // with auto thresholds only
  std::optional<common::MonoTime> learn_due_;  // the next learning (none while one runs)
  std::uint64_t learnings_ = 0;
  std::uint64_t learn_failures_ = 0;
  std::uint64_t learn_failures_in_row_ = 0;
  double learn_seconds_ = 0;        // the last learning query's time
  double learn_apply_seconds_ = 0;  // the loop's time to apply it
  CycleSchedule schedule_;
  std::chrono::milliseconds db_stuck_after_;
  std::set<std::size_t> dirty_;
  std::optional<common::MonoTime> instant_due_;
  std::vector<std::optional<proto::Verdict>> logged_verdict_;
  common::BusReconnect reconnect_;
  bool query_inflight_ = false;           // a fleet query (a cycle's or a check's) runs
  std::set<std::size_t> pending_checks_;  // agents whose deadline passed, not checked yet
  std::optional<common::MonoTime> check_finish_by_;
  std::chrono::milliseconds check_budget_{2000};
  std::uint64_t check_queries_ = 0;
  bool db_was_reachable_ = true;
  std::uint64_t instant_reports_ = 0;
  std::uint64_t publish_drops_ = 0;
  std::uint64_t db_aborts_ = 0;
};

}  // namespace trading_heal::probe
