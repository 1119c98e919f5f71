// trading-heal-replay's core: an agent fleet's decision history driven through the probe's
// verdict logic (verdicts, per-agent deadlines, the spaced confirmation) and the actuator's
// engine (limits, backoff, global incident) with simulated time: what trading-heal would have
// restarted, when and why, what it would have held, and which stalls of the history it would
// have caught, late or missed. No D-Bus, no restarts, no model (the diagnosis is taken as
// answered at once, as the rules do with the model down; or never). Pure: no I/O, no clock reads.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "trading_heal/common/config.hpp"

namespace trading_heal::replay {

// One agent's decisions: (symbol, profile) and their timestamps (epoch seconds, any order).
struct Series {
  std::string symbol;
  std::string profile = "default";
  std::vector<double> ts;
};

struct History {
  std::vector<Series> series;
  // Periods the database did not answer (epoch seconds, [from, to)): the probe falls back to
  // the heartbeat files (taken as fresh) and the actuator holds every restart.
  std::vector<std::pair<double, double>> db_outages;
  // Restarts that really happened (the journal's restart jobs: agent instance, epoch seconds):
  // each starts a new process (its startup grace), and a would-be restart followed by one before
  // the decisions came back was not needless.
  std::vector<std::pair<std::string, double>> restarts;
  double from = 0;  // the replay's range; 0: from the first decision to the last
  double to = 0;
};

// What the replay saw trading-heal do (or not do).
struct Finding {
  enum class Kind { kRestart, kHeld, kMissedStall };
  Kind kind = Kind::kRestart;
  std::string agent;  // the instance, e.g. BTC_USDT
  double at = 0;      // epoch seconds
  std::string what;   // restart: the reason; held: the action (rate_limited, exhausted, ...)
  double since_decision = 0;  // seconds since the agent's last decision at `at`
  // A restart: whether decisions resumed on their own within `resume_window` of it (the agent
  // was slow, not dead: a needless restart); a missed stall: its length.
  bool needless = false;
  double stall_seconds = 0;
};

struct AgentReport {
  std::string agent;
  std::size_t decisions = 0;
  std::size_t restarts = 0;
  std::size_t needless = 0;
  std::size_t held = 0;
  std::size_t stalls = 0;      // gaps in the history longer than the stall threshold
  std::size_t caught = 0;      // of those, with a restart inside the gap
  double detection_sum_s = 0;  // restart time - (gap start + threshold), over caught stalls
};

// A gap in an agent's decisions longer than the stall threshold: from its last decision to the
// next one (or to the end of the range).
struct Stall {
  std::string agent;
  double from = 0;
  double to = 0;
  bool caught = false;     // a restart came inside the gap
  double detection_s = 0;  // that restart - (from + threshold)
};

struct Result {
  std::vector<Finding> findings;  // in time order
  std::vector<Stall> stalls;
  std::vector<AgentReport> agents;
  std::uint64_t checks = 0;  // verdicts computed (cycles and deadline checks)
  double from = 0;
  double to = 0;
};

struct Options {
  double resume_window_s = 300;  // a restart followed this soon by a decision was needless
  // The diagnosis arrives at once when the diagnoser is asked (the model answering at once, or
  // down: the rules answer): the restart does not wait for it. false: it never arrives, and
  // every restart waits TRADING_HEAL_DIAGNOSIS_WAIT (a hanging model).
  bool diagnosis = true;
  // The model's time: the diagnosis arrives this long after it was asked (0: at once).
  double model_seconds = 0;
  // Called now and then with the simulated time (a progress line for long ranges).
  std::function<void(double at)> progress;
};

// The agents (cfg.agents) are matched to the history's series by symbol and profile; an agent
// without a series never decided (a configuration mismatch: reported, never restarted by the
// probe's rule). Only the policy settings of `cfg` matter here.
Result run(const History& history, const common::Config& cfg, const Options& options = {});

// The agent specs of a history's series (instance BTC_USDT for BTC-USDT/default,
// BTC_USDT_conservative for profile conservative).
std::vector<common::AgentSpec> agents_of(const History& history);

// A CSV of `timestamp,symbol,profile` lines (a header line is skipped): what
// `COPY (SELECT timestamp, symbol, profile FROM btc.decisions ...) TO STDOUT WITH CSV` writes.
// The error names the line.
tl::expected<History, std::string> parse_csv(const std::string& text);

}  // namespace trading_heal::replay
