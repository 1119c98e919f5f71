// Shadow mode's question: where did trading-heal (TRADING_HEAL_MODE=shadow, its audit's
// would_restart records) and the healer actually in charge (its restarts, from the journal's
// restart jobs of crypto-agent@ units) disagree?
#pragma once

#include <string>
#include <vector>

#include <tl/expected.hpp>

namespace trading_heal::replay {

struct Action {
  std::string agent;  // the instance, BTC_USDT
  double at = 0;      // epoch seconds
};

// The `would_restart` records of an audit file (one JSON object a line; `restart` records too
// when `restarts` is true, for an enforcing installation). The error names the line.
tl::expected<std::vector<Action>, std::string> audit_actions(const std::string& jsonl,
                                                             bool restarts = false);
// The finished restart jobs of crypto-agent@ units in a `journalctl -o json` export (system
// manager UNIT= or user manager USER_UNIT=, JOB_TYPE=restart, JOB_RESULT=done).
tl::expected<std::vector<Action>, std::string> journal_restarts(const std::string& json_lines);

struct Comparison {
  std::vector<std::pair<Action, Action>> agreed;  // ours, theirs: the same agent within the window
  std::vector<Action> only_ours;
  std::vector<Action> only_theirs;
};
// Each of ours matched to the first unmatched of theirs for the same agent within `window_s`.
Comparison compare(std::vector<Action> ours, std::vector<Action> theirs, double window_s);

}  // namespace trading_heal::replay
