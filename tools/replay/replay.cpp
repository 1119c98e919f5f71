#include "replay.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <sstream>

#include "trading_heal/actuator/engine.hpp"
#include "trading_heal/actuator/policy.hpp"
#include "trading_heal/probe/deadlines.hpp"
#include "trading_heal/probe/prober.hpp"
#include "trading_heal/probe/verdict.hpp"

namespace trading_heal::replay {
namespace {

using common::MonoTime;
using common::WallTime;

const MonoTime kBase{std::chrono::hours(1000)};

struct Agent {
  common::AgentSpec spec;
  std::vector<double> ts;  // sorted
  double start = 0;        // the unit's start (a would-be restart moves it)
  std::uint32_t pid = 1000;
  std::vector<double> restarts;
  std::vector<double> real_restarts;  // sorted: restarts that happened (History::restarts)
  std::size_t next_real = 0;
  double failing_since = -1;     // the current failing streak's first failed check
  double diagnosed_streak = -2;  // the streak the diagnosis was given for
  double threshold_s = 600;      // its stall threshold (with auto: learned from its history)
  bool learned = false;
};

// Time as the probe and the engine see it, from epoch seconds of the history.
class Clock {
 public:
  explicit Clock(double from) : from_(from) {}
  MonoTime mono(double t) const {
    return kBase +
           std::chrono::duration_cast<MonoTime::duration>(std::chrono::duration<double>(t - from_));
  }
  double epoch(MonoTime m) const {
    return from_ + std::chrono::duration<double>(m - kBase).count();
  }
  actuator::Now now(double t) const { return {mono(t), common::from_epoch_seconds(t)}; }

 private:
  double from_;
};

// The newest decision at or before `t`, if any.
std::optional<double> newest_at(const std::vector<double>& ts, double t) {
  auto it = std::upper_bound(ts.begin(), ts.end(), t);
  if (it == ts.begin()) return std::nullopt;
  return *std::prev(it);
}

bool in_outage(const History& h, double t) {
  return std::any_of(h.db_outages.begin(), h.db_outages.end(),
                     [t](const auto& o) { return t >= o.first && t < o.second; });
}

bool is_hold(const std::string& action) {
  return action == "rate_limited" || action == "exhausted" || action == "global_incident" ||
         action == "deferred" || action == "restart_ineffective";
}

class Simulation {
 public:
  Simulation(const History& h, const common::Config& cfg, const Options& opts, double from)
      : h_(h),
        opts_(opts),
        clock_(from),
        probe_(probe::probe_options(cfg)),
        schedule_(0, probe_.deadlines),
        engine_(specs(h), actuator::Policy::from_config(cfg), 1),
        diagnose_after_(cfg.diagnose_after) {
    for (const auto& spec : specs(h)) {
      Agent a;
      a.spec = spec;
      for (const auto& s : h.series) {
        if (s.symbol == spec.symbol && s.profile == spec.profile) a.ts = s.ts;
      }
      std::sort(a.ts.begin(), a.ts.end());
      for (const auto& [agent, at] : h.restarts) {
        if (agent == spec.instance) a.real_restarts.push_back(at);
      }
      std::sort(a.real_restarts.begin(), a.real_restarts.end());
      a.start = from - 86400;  // running long before the range
      a.threshold_s = probe_.policy.stall_threshold_s;
      if (probe_.learn_thresholds) {
        // TRADING_HEAL_STALL_THRESHOLD=auto: the threshold the probe's rule learns from the
        // agent's whole replayed history (hindsight: the live probe learns from the week before).
        const auto rec = probe::recommend(probe::summarize(a.ts), probe_.rule);
        if (rec.enough) {
          a.threshold_s = rec.threshold_s;
          a.learned = true;
        }
      }
      agents_.push_back(std::move(a));
    }
    schedule_ = probe::DeadlineSchedule(agents_.size(), probe_.deadlines);
    for (std::size_t i = 0; i < agents_.size(); ++i) {
      schedule_.set_stall_threshold(i, agents_[i].threshold_s);
    }
  }

  // The replayed span, and the probe's cycle in it (seconds).
  struct Window {
    double from;
    double to;
    double interval;
  };
  Result run(const Window& w) {
    const double from = w.from;
    const double to = w.to;
    const double interval = w.interval;
    Result r;
    r.from = from;
    r.to = to;
    double next_cycle = from;
    double last = from - 1;
    double next_progress = from + 86400;
    while (true) {
      double t = next_cycle;
      if (auto d = schedule_.next()) t = std::min(t, clock_.epoch(*d));
      if (!answers_.empty()) t = std::min(t, answers_.begin()->first);
      if (auto e = engine_.next_deadline(clock_.now(std::max(last, from)))) {
        if (const double et = clock_.epoch(*e); et > last) t = std::min(t, et);
      }
      if (t > to) break;
      t = std::max(t, last);
      last = t;
      if (opts_.progress && t >= next_progress) {
        opts_.progress(t);
        next_progress += 86400;
      }
      while (!answers_.empty() && answers_.begin()->first <= t) {
        diagnose(agents_[answers_.begin()->second], t, r);
        answers_.erase(answers_.begin());
      }
      if (t >= next_cycle) {
        heartbeat(t);
        std::vector<std::size_t> all(agents_.size());
        for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
        check(all, t, r);
        next_cycle += interval;
      } else {
        // The deadline itself, not its round trip through epoch seconds (which can land a
        // nanosecond early and leave it never due).
        MonoTime due = clock_.mono(t);
        if (auto d = schedule_.next(); d && clock_.epoch(*d) <= t + 1e-6) due = std::max(due, *d);
        check(schedule_.take_due(due), t, r);
      }
      handle(engine_.on_tick(clock_.now(t)), t, r);
    }
    return r;
  }

  const std::vector<Agent>& agents() const { return agents_; }

 private:
  static std::vector<common::AgentSpec> specs(const History& h) { return agents_of(h); }

  void heartbeat(double t) {
    const bool reachable = !in_outage(h_, t);
    if (db_reachable_ && *db_reachable_ == reachable) return;
    db_reachable_ = reachable;
    proto::Heartbeat hb;
    hb.component = "probe";
    hb.stats["db_reachable"] = reachable;
    (void)engine_.on_probe_heartbeat(hb, clock_.now(t));
  }

  void check(const std::vector<std::size_t>& which, double t, Result& r) {
    const bool outage = in_outage(h_, t);
    for (std::size_t i : which) {
      Agent& a = agents_[i];
      // A restart that really happened (the history's journal) starts a new process.
      while (a.next_real < a.real_restarts.size() && a.real_restarts[a.next_real] <= t) {
        a.start = a.real_restarts[a.next_real++];
        ++a.pid;
      }
      probe::AgentFacts f;
      f.unit = probe::UnitFacts{"loaded", "active", "running", "success", a.pid, 0, a.start};
      f.process = probe::ProcessFacts{true, false, std::nullopt, 0, 0};
      const auto newest = outage || a.ts.empty() ? std::nullopt : newest_at(a.ts, t);
      if (!outage && a.ts.empty()) {
        f.age = probe::AgeFacts{probe::DbAnswer::kNeverSeen, 0, std::nullopt};
      } else if (newest) {
        f.age = probe::AgeFacts{probe::DbAnswer::kRow, *newest, std::nullopt};
      } else {
        // The database away, or before the history's first decision of this agent: nothing is
        // known, neutral (its heartbeat taken as fresh), not a stall.
        f.age = probe::AgeFacts{probe::DbAnswer::kUnavailable, 0, t};
      }
      std::optional<double> effective;
      probe::VerdictPolicy policy = probe_.policy;
      policy.stall_threshold_s = a.threshold_s;
      policy.threshold_source =
          a.learned ? proto::ThresholdSource::kLearned : proto::ThresholdSource::kFixed;
      proto::HealthReport rep = probe::evaluate(a.spec, f, policy, t, memory_, &effective);
      rep.consecutive_failures = failures_.apply(a.spec.instance, rep.verdict, clock_.mono(t),
                                                 schedule_.failure_spacing(rep.verdict));
      if (rep.consecutive_failures == 0) {
        a.failing_since = -1;
      } else if (a.failing_since < 0) {
        a.failing_since = t;
      }
      // The diagnoser is asked at the DIAGNOSE_AFTER-th failed check; it answers after the
      // model's time.
      if (opts_.diagnosis && static_cast<int>(rep.consecutive_failures) >= diagnose_after_ &&
          a.failing_since >= 0 && a.diagnosed_streak != a.failing_since) {
        a.diagnosed_streak = a.failing_since;
        answers_.emplace(t + opts_.model_seconds, i);
      }
      schedule_.after_check(i, clock_.mono(t), rep.verdict, rep.consecutive_failures, effective);
      ++r.checks;
      handle(engine_.on_health(rep, clock_.now(t)), t, r);
    }
  }

  void diagnose(const Agent& a, double t, Result& r) {
    proto::Diagnosis d;
    d.agent = a.spec.instance;
    d.cause = "replayed";
    d.source = opts_.model_seconds > 0 ? "llm" : "rules";
    d.latency_seconds = opts_.model_seconds;
    handle(engine_.on_diagnosis(d, clock_.now(t)), t, r);
  }

  Agent* find(const std::string& instance) {
    for (auto& a : agents_) {
      if (a.spec.instance == instance) return &a;
    }
    return nullptr;
  }

  void handle(const actuator::Decisions& decisions, double t, Result& r) {
    for (const auto& d : decisions) {
      if (const auto* rd = std::get_if<actuator::RestartDecision>(&d)) {
        restart(*rd, t, r);
      } else if (const auto* e = std::get_if<proto::Event>(&d); e && is_hold(e->action)) {
        Finding f;
        f.kind = Finding::Kind::kHeld;
        f.agent = e->agent;
        f.at = t;
        f.what = e->action;
        if (Agent* a = find(e->agent)) {
          if (auto n = newest_at(a->ts, t)) f.since_decision = t - *n;
        }
        r.findings.push_back(std::move(f));
      }
    }
  }

  // The restart is taken as made: a new MainPID started now (the startup grace applies); the
  // history goes on as it went.
  void restart(const actuator::RestartDecision& rd, double t, Result& r) {
    Agent* a = find(rd.agent);
    if (a == nullptr) return;
    Finding f;
    f.kind = Finding::Kind::kRestart;
    f.agent = rd.agent;
    f.at = t;
    f.what = rd.reason;
    if (auto n = newest_at(a->ts, t)) f.since_decision = t - *n;
    // Needless: decisions came back on their own soon after, no real restart in between.
    auto next = std::upper_bound(a->ts.begin(), a->ts.end(), t);
    const bool resumed = next != a->ts.end() && *next - t <= opts_.resume_window_s;
    const bool restarted_really =
        std::any_of(a->real_restarts.begin(), a->real_restarts.end(), [&](double rr) {
          return rr >= t - opts_.resume_window_s && (next == a->ts.end() || rr <= *next);
        });
    f.needless = resumed && !restarted_really;
    r.findings.push_back(std::move(f));
    a->restarts.push_back(t);
    const std::uint32_t old_pid = a->pid;
    ++a->pid;
    a->start = t;
    actuator::RestartResult res;
    res.agent = rd.agent;
    res.outcome = actuator::Outcome::kRestarted;
    res.detail = "replayed";
    res.old_pid = old_pid;
    res.new_pid = a->pid;
    res.elapsed_seconds = 0.05;
    res.reset_failed = rd.reset_failed;
    handle(engine_.on_restart_result(res, clock_.now(t)), t, r);
  }

  const History& h_;
  const Options& opts_;
  Clock clock_;
  probe::ProbeOptions probe_;
  probe::DeadlineSchedule schedule_;
  probe::AgeMemory memory_;
  probe::FailureCounter failures_;
  actuator::Engine engine_;
  std::vector<Agent> agents_;
  std::optional<bool> db_reachable_;
  std::multimap<double, std::size_t> answers_;  // diagnoses on their way: time, agent
  int diagnose_after_;
};

// The history's stalls (gaps longer than the threshold, the last one up to `to`) against the
// restarts made inside them.
// Each agent's stalls are the gaps longer than its own threshold.
void score(const std::vector<Agent>& agents, double from, double to, Result& r) {
  for (const auto& a : agents) {
    const double threshold = a.threshold_s;
    AgentReport rep;
    rep.agent = a.spec.instance;
    rep.decisions = a.ts.size();
    for (const auto& f : r.findings) {
      if (f.agent != a.spec.instance) continue;
      if (f.kind == Finding::Kind::kRestart) {
        ++rep.restarts;
        if (f.needless) ++rep.needless;
      } else if (f.kind == Finding::Kind::kHeld) {
        ++rep.held;
      }
    }
    for (std::size_t k = 0; k < a.ts.size(); ++k) {
      const double begin = a.ts[k];
      const double end = k + 1 < a.ts.size() ? a.ts[k + 1] : to;
      // Judged only when its deadline falls inside the replayed range.
      if (end - begin <= threshold || begin + threshold > to || begin + threshold < from) continue;
      ++rep.stalls;
      Stall st{a.spec.instance, begin, end, false, 0};
      auto it = std::upper_bound(a.restarts.begin(), a.restarts.end(), begin + threshold - 1e-6);
      if (it != a.restarts.end() && *it < end) {
        ++rep.caught;
        st.caught = true;
        st.detection_s = *it - (begin + threshold);
        rep.detection_sum_s += st.detection_s;
        r.stalls.push_back(st);
      } else {
        r.stalls.push_back(st);
        Finding f;
        f.kind = Finding::Kind::kMissedStall;
        f.agent = a.spec.instance;
        f.at = begin + threshold;
        f.what = "stall not restarted";
        f.since_decision = threshold;
        f.stall_seconds = end - begin;
        r.findings.push_back(std::move(f));
      }
    }
    r.agents.push_back(rep);
  }
  std::stable_sort(r.findings.begin(), r.findings.end(),
                   [](const Finding& x, const Finding& y) { return x.at < y.at; });
}

}  // namespace

std::vector<common::AgentSpec> agents_of(const History& history) {
  std::vector<common::AgentSpec> out;
  for (const auto& s : history.series) {
    common::AgentSpec a;
    std::string base = s.symbol;
    std::replace(base.begin(), base.end(), '-', '_');
    a.instance = s.profile == "default" ? base : base + "_" + s.profile;
    a.unit = common::unit_for(a.instance);
    a.symbol = s.symbol;
    a.profile = s.profile;
    out.push_back(a);
  }
  return out;
}

Result run(const History& history, const common::Config& cfg, const Options& options) {
  double from = history.from;
  double to = history.to;
  if (from == 0 || to == 0) {
    double lo = 0;
    double hi = 0;
    for (const auto& s : history.series) {
      for (double t : s.ts) {
        lo = lo == 0 ? t : std::min(lo, t);
        hi = std::max(hi, t);
      }
    }
    if (from == 0) from = lo;
    if (to == 0) to = hi;
  }
  Simulation sim(history, cfg, options, from);
  const double interval = std::chrono::duration<double>(cfg.interval).count();
  Result r = sim.run({.from = from, .to = to, .interval = interval});
  score(sim.agents(), from, to, r);
  return r;
}

tl::expected<History, std::string> parse_csv(const std::string& text) {
  History h;
  std::map<std::pair<std::string, std::string>, std::size_t> index;
  std::istringstream in(text);
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (n == 1 && line.rfind("timestamp", 0) == 0)) continue;
    const auto c1 = line.find(',');
    const auto c2 = c1 == std::string::npos ? c1 : line.find(',', c1 + 1);
    if (c2 == std::string::npos) {
      return tl::unexpected("line " + std::to_string(n) + ": want timestamp,symbol,profile");
    }
    char* end = nullptr;
    const std::string ts_text = line.substr(0, c1);
    const double ts = std::strtod(ts_text.c_str(), &end);
    if (end == ts_text.c_str() || *end != '\0' || !std::isfinite(ts) || ts <= 0) {
      return tl::unexpected("line " + std::to_string(n) + ": '" + ts_text +
                            "' is not an epoch timestamp");
    }
    const std::string symbol = line.substr(c1 + 1, c2 - c1 - 1);
    std::string profile = line.substr(c2 + 1);
    if (symbol.empty()) return tl::unexpected("line " + std::to_string(n) + ": no symbol");
    if (profile.empty()) profile = "default";
    auto [it, fresh] = index.emplace(std::make_pair(symbol, profile), h.series.size());
    if (fresh) h.series.push_back(Series{symbol, profile, {}});
    h.series[it->second].ts.push_back(ts);
  }
  if (h.series.empty()) return tl::unexpected(std::string("no decisions"));
  return h;
}

}  // namespace trading_heal::replay
