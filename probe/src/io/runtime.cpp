// The probe's loop-driven runtime.
#include "trading_heal/probe/runtime.hpp"
#include "trading_heal/proto/actions.hpp"

#include <unistd.h>

#include <spdlog/spdlog.h>

namespace trading_heal::probe {
namespace {

using std::chrono::duration;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

// The database gets this share of the interval before the cycle goes on without it.
milliseconds db_budget(const common::Config& cfg) {
  const double s = std::clamp(duration<double>(cfg.interval).count() * 0.6, 0.2, 5.0);
  return milliseconds(static_cast<long>(s * 1000));
}

// A failed learning is tried again this soon (a success: kLearnRefreshSeconds later).
constexpr double kLearnRetrySeconds = 300;

// Signals about one crash come in bursts (Unit and Service interfaces, several states):
// gather them briefly, then re-check once.
constexpr milliseconds kInstantDebounce{30};

}  // namespace

Runtime::Runtime(const common::Config& cfg, ProbeOptions opts)
    : cfg_(cfg),
      schedule_(std::chrono::steady_clock::now(),
                {.interval = duration_cast<CycleSchedule::Duration>(cfg.interval),
                 .db_budget = db_budget(cfg)}),
      reconnect_("probe", cfg.scope) {
  const PgSettings pgs = pg_settings(cfg);
  db_stuck_after_ = 2 * pgs.statement_timeout + milliseconds(1000);
  // A deadline check waits for its query no longer than a cycle would, and not seconds: the
  // heartbeat files answer when the database is slow.
  check_budget_ = std::min(db_budget(cfg), milliseconds(2000));
  pg_ = std::make_unique<PgStore>(pgs);
  const bool learn = opts.learn_thresholds;
  prober_ = std::make_unique<Prober>(cfg, std::move(opts), nullptr, pg_.get());
  if (learn) {
    // Its own connection and a generous timeout: it runs beside the checks, never before them.
    learner_ = std::make_unique<ThresholdLearner>(pgs.conninfo, std::chrono::seconds(60),
                                                  prober_->agent_keys());
    learn_due_ = std::chrono::steady_clock::now();
  }
  logged_verdict_.resize(cfg.agents.size());
  // Without a bus every unit is UNKNOWN (never restarted) until a connection comes.
  if (!connect_bus(std::chrono::steady_clock::now())) {
    spdlog::error("systemd bus unavailable scope={}: units unknown until it answers",
                  common::to_string(cfg.scope));
  }
  spdlog::info("probe database target={} statement_timeout_ms={}", cfg.pg.describe(),
               pgs.statement_timeout.count());
}

Runtime::~Runtime() = default;

int Runtime::bus_fd() const { return bus_ ? bus_->fd() : -1; }
int Runtime::db_fd() const { return pg_->event_fd(); }
int Runtime::learn_fd() const { return learner_ ? learner_->event_fd() : -1; }

void Runtime::maybe_learn(const common::Clock& clock) {
  if (!learner_ || !learn_due_ || clock.mono() < *learn_due_) return;
  if (learner_->start(common::to_epoch_seconds(clock.wall()) - kLearnLookbackSeconds)) {
    learn_due_.reset();  // the answer schedules the next one
  }
}

common::MonoTime Runtime::on_learn(const common::Clock& clock) {
  if (learner_) {
    if (auto answer = learner_->take()) apply_learning(*answer, clock);
  }
  return next_deadline();
}

void Runtime::apply_learning(const LearnAnswer& answer, const common::Clock& clock) {
  const auto t0 = std::chrono::steady_clock::now();
  // Hourly; after a failure (the database away at start) again in 5 minutes.
  learn_due_ = clock.mono() + duration_cast<common::MonoTime::duration>(duration<double>(
                                  answer.ok ? kLearnRefreshSeconds : kLearnRetrySeconds));
  ++learnings_;
  if (!answer.ok) {
    ++learn_failures_;
    // One line for a run of failures (each counted in the heartbeat's learn_failures).
    if (learn_failures_in_row_++ == 0) {
      const auto& t = prober_->thresholds();
      spdlog::warn(
          "stall threshold learning failed, thresholds kept learned={} fixed_s={} "
          "retry_s={:.0f} error=\"{}\"",
          t.learned_count(), duration<double>(cfg_.stall_threshold).count(), kLearnRetrySeconds,
          answer.error);
    }
    return;
  }
  if (learn_failures_in_row_ > 0) {
    spdlog::info("stall threshold learning works again failures={}", learn_failures_in_row_);
    learn_failures_in_row_ = 0;
  }
  learn_seconds_ = answer.seconds;
  const auto changed = prober_->learn(answer.summaries, clock.mono());
  learn_apply_seconds_ = duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto& t = prober_->thresholds();
  for (std::size_t i : changed) {
    const auto& rec = t.recommendation(i);
    spdlog::info(
        "stall threshold agent={} threshold_s={:.1f} source={} gaps={} span_h={:.1f} "
        "p999_s={:.1f} quiet_hours={}",
        cfg_.agents[i].instance, t.at(i).seconds, t.at(i).learned ? "learned" : "fixed",
        rec ? rec->gaps : 0, rec ? rec->span_s / 3600 : 0.0, rec ? rec->p999_s : 0.0,
        rec ? rec->quiet_hours.size() : 0);
  }
  spdlog::info(
      "stall thresholds learned={} of={} changed={} query_s={:.3f} rows={} apply_ms={:.3f}",
      t.learned_count(), t.size(), changed.size(), answer.seconds, answer.rows,
      learn_apply_seconds_ * 1000);
}

common::MonoTime Runtime::next_deadline() const {
  auto next = schedule_.next_deadline();
  if (instant_due_) next = std::min(next, *instant_due_);
  if (!bus_) next = std::min(next, reconnect_.next_attempt());
  if (auto d = prober_->deadlines().next()) next = std::min(next, *d);
  if (check_finish_by_) next = std::min(next, *check_finish_by_);
  if (learn_due_) next = std::min(next, *learn_due_);
  // Checks waiting for a free query slot start as soon as it frees (on_db wakes the loop).
  return next;
}

bool Runtime::connect_bus(common::MonoTime now) {
  auto b = SystemdBus::open(cfg_.scope);
  if (!b) {
    reconnect_.attempt_failed(b.error(), now);
    return false;
  }
  const auto& units = prober_->watched_units();
  std::string note = "resubscribed_units=" + std::to_string(units.size());
  if (auto w = (*b)->watch(units); !w) {
    if ((*b)->broken()) {
      reconnect_.attempt_failed(w.error(), now);
      return false;
    }
    spdlog::warn("instant crash detection disabled error={}", w.error());
    note = "resubscribed_units=0";
  }
  bus_ = std::move(*b);
  prober_->set_bus(bus_.get());
  if (on_bus_fd) on_bus_fd(-1, bus_->fd());
  if (reconnect_.down()) {
    reconnect_.reconnected(now, note);
    // Whatever changed while nothing was heard: every watched unit is checked at once.
    for (std::size_t i = 0; i < units.size(); ++i) dirty_.insert(i);
    instant_due_ = now;
  }
  return true;
}

void Runtime::lose_bus(const std::string& why, common::MonoTime now) {
  reconnect_.lost(why, now);
  if (on_bus_fd) on_bus_fd(bus_->fd(), -1);
  prober_->set_bus(nullptr);
  bus_.reset();
  dirty_.clear();
  instant_due_.reset();
}

void Runtime::drain_bus(common::MonoTime now) {
  for (auto i : bus_->drain()) dirty_.insert(i);
  if (bus_->broken()) {
    lose_bus("connection closed or reset", now);
    return;
  }
  if (!dirty_.empty() && !instant_due_) instant_due_ = now + kInstantDebounce;
}

common::MonoTime Runtime::on_tick(const common::Clock& clock) {
  const auto now = clock.mono();
  if (schedule_.running() && now >= schedule_.finish_by()) finish_cycle(std::nullopt, clock);
  if (query_inflight_ && pg_->abort_if_stuck(db_stuck_after_)) {
    ++db_aborts_;
    spdlog::warn("database query stuck, connection aborted aborts={}", db_aborts_);
  }
  if (schedule_.due(now)) {
    schedule_.begin(now);
    // A check's query in flight is the same range query: it serves the cycle too.
    if (!query_inflight_) {
      if (prober_->begin_cycle(common::to_epoch_seconds(clock.wall()))) {
        query_inflight_ = true;
      } else if (!pg_->busy()) {
        finish_cycle(std::nullopt, clock);  // no query in flight: nothing to wait for
      }
    }
  }
  if (!bus_ && reconnect_.attempt_due(now)) connect_bus(now);
  if (instant_due_ && now >= *instant_due_) {
    instant_due_.reset();
    std::set<std::size_t> dirty;
    dirty.swap(dirty_);
    auto reports = prober_->recheck(dirty, common::to_epoch_seconds(clock.wall()), clock.mono());
    instant_reports_ += reports.size();
    publish(reports, "signal");
  }
  run_deadlines(clock);
  maybe_learn(clock);
  if (bus_) drain_bus(now);
  return next_deadline();
}

void Runtime::run_deadlines(const common::Clock& clock) {
  const auto now = clock.mono();
  for (std::size_t i : prober_->deadlines().take_due(now)) pending_checks_.insert(i);
  // The query took too long: the waiting checks go on with the heartbeat files.
  if (check_finish_by_ && now >= *check_finish_by_) finish_check(std::nullopt, clock);
  // A running cycle checks every agent anyway; a query in flight serves the checks when it ends.
  if (pending_checks_.empty() || schedule_.running() || query_inflight_) return;
  if (prober_->begin_cycle(common::to_epoch_seconds(clock.wall()))) {
    query_inflight_ = true;
    ++check_queries_;
    check_finish_by_ = now + check_budget_;
  } else {
    finish_check(std::nullopt, clock);  // no database, or a stuck query still holds it
  }
}

void Runtime::finish_check(const std::optional<FleetAnswer>& answer, const common::Clock& clock) {
  const std::vector<std::size_t> agents(pending_checks_.begin(), pending_checks_.end());
  pending_checks_.clear();
  check_finish_by_.reset();
  auto reports =
      prober_->finish_check(agents, answer, common::to_epoch_seconds(clock.wall()), clock.mono());
  if (answer) note_db_state();
  publish(reports, "deadline");
}

common::MonoTime Runtime::on_bus(const common::Clock& clock) {
  if (bus_) drain_bus(clock.mono());
  return next_deadline();
}

common::MonoTime Runtime::on_db(const common::Clock& clock) {
  auto answer = pg_->take();
  if (!answer) return next_deadline();
  query_inflight_ = false;
  if (schedule_.running()) {
    finish_cycle(answer, clock);
  } else if (!pending_checks_.empty()) {
    finish_check(answer, clock);
  } else {
    prober_->absorb(*answer);  // late (its checks went on without it): still news for the ranges
  }
  // Checks that came due meanwhile start now, with a query of their own.
  run_deadlines(clock);
  return next_deadline();
}

void Runtime::finish_cycle(const std::optional<FleetAnswer>& answer, const common::Clock& clock) {
  auto reports =
      prober_->finish_cycle(answer, common::to_epoch_seconds(clock.wall()), clock.mono());
  schedule_.finish(clock.mono());
  // Every agent was checked: the checks that were waiting are done.
  pending_checks_.clear();
  check_finish_by_.reset();
  note_db_state();
  publish(reports, "cycle");
  for (const auto& r : prober_->take_new_mismatches()) {
    spdlog::warn("probable configuration mismatch agent={} symbol={} profile={}", r.agent, r.symbol,
                 r.profile);
    proto::Event e;
    e.action = proto::name(proto::Action::kConfigMismatch);
    e.agent = r.agent;
    e.symbol = r.symbol;
    e.profile = r.profile;
    e.success = false;
    e.detail = "no row in btc.decisions ever had symbol=" + r.symbol + " profile=" + r.profile +
               ": stall detection relies on the heartbeat file only";
    if (on_event) on_event(e);
  }
  proto::Heartbeat hb;
  hb.component = "probe";
  hb.pid = static_cast<std::uint32_t>(::getpid());
  hb.interval_seconds = duration<double>(cfg_.interval).count();
  hb.stats = {{"db_reachable", prober_->db_reachable()},
              {"cycle_seconds", schedule_.last_cycle_seconds()},
              {"db_query_seconds", prober_->db_seconds()},
              {"overruns", static_cast<std::int64_t>(schedule_.overruns())},
              {"cycles", static_cast<std::int64_t>(schedule_.cycles())},
              {"agents", static_cast<std::int64_t>(reports.size())},
              {"db_failures", static_cast<std::int64_t>(prober_->db_failures())},
              {"db_aborts", static_cast<std::int64_t>(db_aborts_)},
              {"bus_failures", static_cast<std::int64_t>(prober_->bus_failures())},
              {"bus_reconnects", static_cast<std::int64_t>(reconnect_.losses())},
              {"peers_refused", static_cast<std::int64_t>(peers_refused ? peers_refused() : 0)},
              {"instant_reports", static_cast<std::int64_t>(instant_reports_)},
              {"deadline_checks", static_cast<std::int64_t>(prober_->deadline_checks())},
              {"deadline_queries", static_cast<std::int64_t>(check_queries_)},
              {"config_mismatch", static_cast<std::int64_t>(prober_->mismatched())},
              {"publish_drops", static_cast<std::int64_t>(publish_drops_)}};
  hb.stats["host"] = cfg_.host;  // many hosts: the name the centre's orders use for this host
  if (learner_) {
    hb.stats["thresholds_learned"] =
        static_cast<std::int64_t>(prober_->thresholds().learned_count());
    hb.stats["learnings"] = static_cast<std::int64_t>(learnings_);
    hb.stats["learn_failures"] = static_cast<std::int64_t>(learn_failures_);
    hb.stats["learn_query_seconds"] = learn_seconds_;
    hb.stats["learn_apply_seconds"] = learn_apply_seconds_;
  }
  if (on_heartbeat) on_heartbeat(hb);
}

void Runtime::note_db_state() {
  const bool ok = prober_->db_reachable();
  if (ok && !db_was_reachable_) {
    spdlog::info("database reachable again failures={}", prober_->db_failures());
  } else if (!ok && db_was_reachable_) {
    spdlog::warn("database unavailable, ages from heartbeat files error=\"{}\" failures={}",
                 prober_->db_error(), prober_->db_failures());
  }
  db_was_reachable_ = ok;
}

void Runtime::publish(const std::vector<proto::HealthReport>& reports, const char* trigger) {
  for (const auto& r : reports) {
    if (const auto* spec = cfg_.find_agent(r.agent)) {
      const auto i = static_cast<std::size_t>(spec - cfg_.agents.data());
      if (logged_verdict_[i] != r.verdict) {
        spdlog::info(
            "agent verdict changed agent={} verdict={} failures={} trigger={} detail=\"{}\"",
            r.agent, proto::to_string(r.verdict), r.consecutive_failures, trigger, r.detail);
        logged_verdict_[i] = r.verdict;
      }
    }
    if (on_report) on_report(r);
  }
}

std::vector<proto::HealthReport> Runtime::run_once(const common::Clock& clock) {
  if (learner_) {
    // One check by hand judges by the thresholds the daemon would learn.
    learner_->start(common::to_epoch_seconds(clock.wall()) - kLearnLookbackSeconds);
    if (auto answer = learner_->wait(clock.mono() + std::chrono::seconds(30))) {
      apply_learning(*answer, clock);
    } else {
      spdlog::warn("stall threshold learning took over 30 s: the fixed threshold stands");
    }
  }
  const auto wall = common::to_epoch_seconds(clock.wall());
  std::optional<FleetAnswer> answer;
  if (prober_->begin_cycle(wall)) answer = pg_->wait(clock.mono() + db_budget(cfg_) * 4);
  auto reports =
      prober_->finish_cycle(answer, common::to_epoch_seconds(clock.wall()), clock.mono());
  if (!prober_->db_reachable()) {
    spdlog::warn("database unavailable, ages from heartbeat files error=\"{}\"",
                 prober_->db_error());
  }
  return reports;
}

}  // namespace trading_heal::probe
