// A probe cycle: facts from systemd, /proc, PostgreSQL and heartbeat files -> reports.
#include "trading_heal/probe/prober.hpp"

#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "trading_heal/probe/heartbeat.hpp"

namespace trading_heal::probe {

ProbeOptions probe_options(const common::Config& cfg) {
  ProbeOptions o;
  const double interval = std::chrono::duration<double>(cfg.interval).count();
  o.policy.stall_threshold_s = std::chrono::duration<double>(cfg.stall_threshold).count();
  o.learn_thresholds = cfg.stall_threshold_auto;
  o.rule.min_s = std::chrono::duration<double>(cfg.stall_threshold_min).count();
  o.rule.max_s = std::chrono::duration<double>(cfg.stall_threshold_max).count();
  // The search window: exact ages up to 3x the threshold (the largest an agent may learn; at
  // least 30 min, so that the 15 min TradingDecisionsGap alert sees real ages); beyond it the
  // AgeMemory still knows the exact age of any row it once saw, and otherwise "older than the
  // cap" is all a verdict needs.
  o.policy.age_cap_s =
      std::max(3 * std::chrono::duration<double>(cfg.largest_stall_threshold()).count(), 1800.0);
  o.bus_timeout =
      std::chrono::milliseconds(static_cast<long>(std::clamp(interval * 0.5, 0.2, 5.0) * 1000));
  o.proc_root = cfg.proc_root;
  o.policy.startup_grace_s = std::chrono::duration<double>(cfg.startup_grace).count();
  o.deadlines.stall_threshold_s = o.policy.stall_threshold_s;
  o.deadlines.confirm = cfg.confirm_interval;
  o.deadlines.consecutive_threshold = cfg.consecutive_threshold;
  return o;
}

FleetPlannerSettings planner_settings(const ProbeOptions& o) {
  FleetPlannerSettings s;
  s.cap = o.policy.age_cap_s;
  // Rows committed late (timestamp taken, INSERT committed later) still land in the next range
  // if the delay is below the margin (kLateCommitMargin). The margin costs rows on every cycle's
  // range scan, so it does not grow with the interval.
  s.margin = kLateCommitMargin;
  s.first_slice = std::max(60.0, s.margin);
  // Catching up is a one-time cost after start: a bigger budget per cycle than the steady
  // range scan, and at most about 60 slices to the cap.
  s.min_slice = std::max(10.0, s.cap / 60);
  s.target_seconds = 0.05;
  return s;
}

PgSettings pg_settings(const common::Config& cfg) {
  PgSettings s;
  const double interval = std::chrono::duration<double>(cfg.interval).count();
  // libpq's connect_timeout is whole seconds, at least 2: below the interval where it can be.
  const int connect_s = std::clamp(static_cast<int>(interval) - 1, 2, 10);
  s.conninfo = cfg.pg.conninfo(connect_s);
  s.conninfo = with_pg_option(s.conninfo, "application_name", "trading-heal-probe");
  s.statement_timeout =
      std::chrono::milliseconds(static_cast<long>(std::clamp(interval * 0.5, 0.2, 10.0) * 1000));
  return s;
}

Prober::Prober(const common::Config& cfg, ProbeOptions opts, SystemdBus* bus, PgStore* pg)
    : cfg_(cfg),
      opts_(std::move(opts)),
      bus_(bus),
      pg_(pg),
      proc_(opts_.proc_root),
      planner_(cfg.agents, planner_settings(opts_)),
      cpu_(proc_.ticks_per_second()),
      deadlines_(cfg.agents.size(), opts_.deadlines),
      thresholds_(agent_keys(), opts_.policy.stall_threshold_s) {
  for (std::size_t i = 0; i < cfg_.agents.size(); ++i) {
    patterns_.emplace_back(cfg_.agents[i].process_pattern);
    if (!cfg_.agents[i].enabled) continue;  // not checked, never reported
    enabled_.push_back(i);
    units_.push_back(cfg_.agents[i].unit);
  }
  last_age_.resize(cfg_.agents.size());
  last_verdict_.resize(cfg_.agents.size());
}

std::vector<std::pair<std::string, std::string>> Prober::agent_keys() const {
  std::vector<std::pair<std::string, std::string>> keys;
  keys.reserve(cfg_.agents.size());
  for (const auto& a : cfg_.agents) keys.emplace_back(a.symbol, a.profile);
  return keys;
}

std::vector<std::size_t> Prober::learn(
    const std::map<std::pair<std::string, std::string>, GapSummary>& summaries,
    common::MonoTime now) {
  auto changed = thresholds_.learn(summaries, opts_.rule);
  for (std::size_t i : changed) {
    deadlines_.set_stall_threshold(i, thresholds_.at(i).seconds);
    if (cfg_.agents[i].enabled) deadlines_.set(i, now);
  }
  return changed;
}

bool Prober::begin_cycle(double now_wall) {
  if (pg_ == nullptr) return false;
  FleetPlan plan = planner_.plan(now_wall);
  std::uint64_t generation = 0;
  if (!pg_->submit(plan, &generation)) return false;  // the previous query still runs
  inflight_ = std::move(plan);
  inflight_generation_ = generation;
  return true;
}

void Prober::apply_answer(const std::optional<FleetAnswer>& answer) {
  db_reachable_ = answer && answer->ok;
  if (answer) db_seconds_ = answer->seconds;
  if (!db_reachable_) {
    ++db_failures_;
    db_error_ = answer ? answer->error : (pg_ != nullptr ? "no answer in time" : "no database");
  } else {
    db_error_.clear();
  }
  if (db_reachable_ && inflight_ && answer->generation == inflight_generation_) {
    planner_.set_composite_index(answer->composite_index);
    planner_.apply(*inflight_, answer->rows, answer->seconds);
    inflight_.reset();
  }
  for (std::size_t i : enabled_) last_age_[i] = db_reachable_ ? planner_.facts(i) : AgeFacts{};
}

std::vector<proto::HealthReport> Prober::finish_cycle(const std::optional<FleetAnswer>& answer,
                                                      double now_wall, common::MonoTime now) {
  apply_answer(answer);
  auto reports = evaluate_agents(enabled_, now_wall, now, true);
  // A cycle's transient buffers (bus replies, the query's result) go back to the system.
  ::malloc_trim(0);
  return reports;
}

std::vector<proto::HealthReport> Prober::finish_check(const std::vector<std::size_t>& agents,
                                                      const std::optional<FleetAnswer>& answer,
                                                      double now_wall, common::MonoTime now) {
  if (answer) {
    apply_answer(answer);
  } else {
    // No query: ages from the heartbeat files (the database's last answer is not current).
    for (std::size_t i : agents) last_age_[i] = AgeFacts{};
  }
  std::vector<std::size_t> checked;
  for (std::size_t i : agents) {
    if (i < cfg_.agents.size() && cfg_.agents[i].enabled) checked.push_back(i);
  }
  deadline_checks_ += checked.size();
  return evaluate_agents(checked, now_wall, now, true);
}

std::vector<proto::HealthReport> Prober::recheck(const std::set<std::size_t>& watched,
                                                 double now_wall, common::MonoTime now) {
  std::vector<std::size_t> agents;
  for (std::size_t w : watched) {
    if (w < enabled_.size()) agents.push_back(enabled_[w]);
  }
  return evaluate_agents(agents, now_wall, now, false);
}

std::vector<proto::HealthReport> Prober::evaluate_agents(const std::vector<std::size_t>& agents,
                                                         double now_wall, common::MonoTime now,
                                                         bool count_every) {
  const double now_mono = std::chrono::duration<double>(now.time_since_epoch()).count();
  std::vector<std::optional<UnitFacts>> unit_facts = query_units(agents);
  std::vector<proto::HealthReport> reports;
  reports.reserve(agents.size());
  for (std::size_t n = 0; n < agents.size(); ++n) {
    const std::size_t i = agents[n];
    const AgentFacts f = facts_of(i, std::move(unit_facts[n]), now_mono);
    reports.push_back(judge(i, f, now_wall, now, count_every));
  }
  return reports;
}

// The bus's answer for `agents` (one entry each, nullopt when unknown). A whole cycle asks for
// units_ as they are; a re-check for its few units. The answer is the vector itself (no second
// one of 1000 empty facts beside it).
std::vector<std::optional<UnitFacts>> Prober::query_units(const std::vector<std::size_t>& agents) {
  std::vector<std::string> subset;
  if (&agents != &enabled_) {
    subset.reserve(agents.size());
    for (std::size_t i : agents) subset.push_back(cfg_.agents[i].unit);
  }
  const std::vector<std::string>& units = &agents != &enabled_ ? subset : units_;
  std::vector<std::optional<UnitFacts>> unit_facts;
  if (bus_ != nullptr && !units.empty()) {
    auto q = bus_->query(units, opts_.bus_timeout);
    if (q) {
      unit_facts = std::move(*q);
    } else {
      ++bus_failures_;
    }
  }
  if (unit_facts.size() != agents.size()) unit_facts.assign(agents.size(), std::nullopt);
  return unit_facts;
}

// Agent `i`'s facts: its unit's, its process's (/proc), its newest decision and heartbeat.
AgentFacts Prober::facts_of(std::size_t i, std::optional<UnitFacts> unit, double now_mono) {
  const auto& spec = cfg_.agents[i];
  AgentFacts f;
  f.unit = std::move(unit);
  f.age = last_age_[i];
  f.age.heartbeat_ts = read_heartbeat(spec.heartbeat_path);
  if (f.unit && f.unit->main_pid > 0) {
    const bool want_cmdline = !patterns_[i].empty();
    const ProcSample s = proc_.read(static_cast<pid_t>(f.unit->main_pid), want_cmdline);
    ProcessFacts p;
    p.exists = s.exists;
    p.zombie = s.zombie;
    p.rss_bytes = s.rss_bytes;
    p.cpu_ratio = cpu_.update(spec.instance, s, now_mono);
    if (want_cmdline && s.exists) p.pattern_ok = patterns_[i].matches(s.cmdline);
    f.process = p;
  }
  return f;
}

// Agent `i`'s report from its facts, its failures counted and its next check planned.
proto::HealthReport Prober::judge(std::size_t i, const AgentFacts& f, double now_wall,
                                  common::MonoTime now, bool count_every) {
  const auto& spec = cfg_.agents[i];
  std::optional<double> effective_age;
  VerdictPolicy policy = opts_.policy;
  policy.stall_threshold_s = thresholds_.at(i).seconds;
  policy.threshold_source =
      thresholds_.at(i).learned ? proto::ThresholdSource::kLearned : proto::ThresholdSource::kFixed;
  proto::HealthReport r = evaluate(spec, f, policy, now_wall, memory_, &effective_age);
  // An instant re-check counts a failure only when the verdict changed: a burst of signals
  // about one crash is one observation, not several. Failures count only when spaced by the
  // confirmation interval, whichever check saw them.
  if (count_every || last_verdict_[i] != r.verdict) {
    r.consecutive_failures =
        failures_.apply(spec.instance, r.verdict, now, deadlines_.failure_spacing(r.verdict));
  } else {
    r.consecutive_failures = failures_.get(spec.instance);
  }
  last_verdict_[i] = r.verdict;
  deadlines_.after_check(i, now, r.verdict, r.consecutive_failures, effective_age);
  if (r.never_seen) {
    if (mismatched_.insert(spec.instance).second) new_mismatches_.push_back(r);
  } else if (r.age_source == proto::AgeSource::kDb) {
    mismatched_.erase(spec.instance);
  }
  return r;
}

std::vector<proto::HealthReport> Prober::take_new_mismatches() {
  std::vector<proto::HealthReport> out;
  out.swap(new_mismatches_);
  return out;
}

}  // namespace trading_heal::probe
