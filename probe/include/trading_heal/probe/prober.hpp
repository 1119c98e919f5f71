// One probe cycle over the fleet: gathers the facts (systemd over D-Bus, /proc, the fleet query,
// heartbeat files), runs the pure verdict logic and keeps the per-agent state (failures, age
// memory, CPU samples). The shell around the core; the sockets stay in main.cpp.
// Not thread-safe: owned by the loop thread.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "trading_heal/common/clock.hpp"
#include "trading_heal/common/config.hpp"
#include "trading_heal/probe/deadlines.hpp"
#include "trading_heal/probe/learned_threshold.hpp"
#include "trading_heal/probe/pg_store.hpp"
#include "trading_heal/probe/proc.hpp"
#include "trading_heal/probe/systemd_bus.hpp"
#include "trading_heal/probe/verdict.hpp"
#include "trading_heal/proto/messages.hpp"

namespace trading_heal::probe {

struct ProbeOptions {
  VerdictPolicy policy;  // policy.stall_threshold_s: the fixed threshold (with auto, the fallback)
  DeadlinePolicy deadlines;
  // TRADING_HEAL_STALL_THRESHOLD=auto: each agent's threshold learned by `rule` (its bounds are
  // TRADING_HEAL_STALL_THRESHOLD_MIN/_MAX) once its history is enough.
  bool learn_thresholds = false;
  ThresholdRule rule;
  std::string proc_root = "/proc";
  std::chrono::milliseconds bus_timeout{2000};
};

// The probe's settings derived from the configuration (interval, threshold, startup grace, proc
// root).
ProbeOptions probe_options(const common::Config& cfg);
PgSettings pg_settings(const common::Config& cfg);
// The fleet query planner's settings (cap, late-commit margin, first range, catch-up slices).
FleetPlannerSettings planner_settings(const ProbeOptions& opts);

class Prober {
 public:
  // `bus` and `pg` may be null (then every unit / every age from the DB is unknown).
  Prober(const common::Config& cfg, ProbeOptions opts, SystemdBus* bus, PgStore* pg);

  // Phase 1: submits the fleet query (a cycle's, or a deadline check's: the same range query).
  // False if the previous query still runs (hung database) or there is no database.
  bool begin_cycle(double now_wall);
  // Phase 2: with the query's answer (nullopt: none in time), the reports of every enabled agent.
  std::vector<proto::HealthReport> finish_cycle(const std::optional<FleetAnswer>& answer,
                                                double now_wall, common::MonoTime now);
  // A deadline check: the reports of `agents` (agent indices) with the answer of the query
  // begun for them (nullopt: none in time or none asked, the ages from the heartbeat files).
  std::vector<proto::HealthReport> finish_check(const std::vector<std::size_t>& agents,
                                                const std::optional<FleetAnswer>& answer,
                                                double now_wall, common::MonoTime now);
  // Instant re-check of watched units (indices into watched_units()), reusing the last ages.
  std::vector<proto::HealthReport> recheck(const std::set<std::size_t>& watched, double now_wall,
                                           common::MonoTime now);
  // When each agent is to be checked next (set by every check of it).
  DeadlineSchedule& deadlines() { return deadlines_; }
  // A learning's answer (TRADING_HEAL_STALL_THRESHOLD=auto): each agent's threshold from its
  // summary. An agent whose threshold changed is checked again at `now` (its deadline moved).
  // Returns the agent indices whose threshold changed.
  std::vector<std::size_t> learn(
      const std::map<std::pair<std::string, std::string>, GapSummary>& summaries,
      common::MonoTime now);
  const ThresholdTable& thresholds() const { return thresholds_; }
  // The (symbol, profile) of every configured agent, in agent order (the learning's keys).
  std::vector<std::pair<std::string, std::string>> agent_keys() const;
  std::uint64_t deadline_checks() const { return deadline_checks_; }

  const std::vector<std::string>& watched_units() const { return units_; }
  // Agents (reports) whose (symbol, profile) just turned out never to have had a row.
  std::vector<proto::HealthReport> take_new_mismatches();

  bool db_reachable() const { return db_reachable_; }
  const std::string& db_error() const { return db_error_; }
  double db_seconds() const { return db_seconds_; }
  std::uint64_t db_failures() const { return db_failures_; }
  std::uint64_t bus_failures() const { return bus_failures_; }
  // The connection was replaced (or lost: null, every unit unknown until a new one comes).
  void set_bus(SystemdBus* bus) { bus_ = bus; }
  std::size_t mismatched() const { return mismatched_.size(); }
  const FleetPlanner& planner() const { return planner_; }

 private:
  std::vector<proto::HealthReport> evaluate_agents(const std::vector<std::size_t>& agents,
                                                   double now_wall, common::MonoTime now,
                                                   bool count_every);
  // The steps of evaluate_agents().
  std::vector<std::optional<UnitFacts>> query_units(const std::vector<std::size_t>& agents);
  AgentFacts facts_of(std::size_t i, std::optional<UnitFacts> unit, double now_mono);
  proto::HealthReport judge(std::size_t i, const AgentFacts& f, double now_wall,
                            common::MonoTime now, bool count_every);
  // Takes a query's answer: reachability, the planner's ranges, every agent's DB facts.
  void apply_answer(const std::optional<FleetAnswer>& answer);

 public:
  // An answer that came after its checks went on without it: its rows still count.
  void absorb(const FleetAnswer& answer) { apply_answer(answer); }

 private:
  const common::Config& cfg_;
  ProbeOptions opts_;
  SystemdBus* bus_;
  PgStore* pg_;
  ProcReader proc_;
  std::vector<std::size_t> enabled_;      // agent indices checked
  std::vector<std::string> units_;        // their units (watch index = position)
  std::vector<ProcessPattern> patterns_;  // per agent
  FleetPlanner planner_;                  // the fleet query's ranges, across cycles
  std::optional<FleetPlan> inflight_;     // the plan of the query in flight
  std::uint64_t inflight_generation_ = 0;
  std::vector<AgeFacts> last_age_;  // per agent, DB part of the last cycle
  std::vector<std::optional<proto::Verdict>> last_verdict_;
  AgeMemory memory_;
  FailureCounter failures_;
  CpuTracker cpu_;
  DeadlineSchedule deadlines_;
  ThresholdTable thresholds_;
  std::uint64_t deadline_checks_ = 0;
  std::set<std::string> mismatched_;
  std::vector<proto::HealthReport> new_mismatches_;
  bool db_reachable_ = false;
  std::string db_error_;
  double db_seconds_ = 0;
  std::uint64_t db_failures_ = 0;
  std::uint64_t bus_failures_ = 0;
};

}  // namespace trading_heal::probe
