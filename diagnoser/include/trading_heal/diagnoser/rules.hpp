// The rule-based classifier: known causes of agent failures recognised in (redacted) journal
// lines without any LLM. Pure and thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "trading_heal/diagnoser/rule_table.hpp"
#include "trading_heal/proto/messages.hpp"

namespace trading_heal::diagnoser {

struct RuleMatch {
  std::string category;  // a rule's category (the shipped ones: deploy/rules/trading-heal.rules);
                         // stall / down / unknown when none matches
  std::string cause;
  proto::Severity severity = proto::Severity::kMedium;
  proto::DiagnosisAction action = proto::DiagnosisAction::kAutoRestart;
  std::string evidence;  // the newest line that matched (empty for the fallbacks)
  bool matched() const { return !evidence.empty(); }
};

// What the probe saw, used when no rule matches.
struct Symptoms {
  proto::Verdict verdict = proto::Verdict::kUnknown;
  std::optional<double> decision_age_seconds;
};

// Among the newest 8 lines that match any rule of `rules`, the most specific rule (first in
// priority order) wins and its newest matching line is the evidence. Older matches are ignored:
// they belong to an earlier incident. When the agent's current run (since its last "Agent
// initialized" / "Starting bootstrap" line) logged matching lines, only those count.
RuleMatch classify(const std::vector<std::string>& lines, const Symptoms& symptoms,
                   const RuleTable& rules);

// The same with the compiled-in table (builtin_rules()).
RuleMatch classify(const std::vector<std::string>& lines, const Symptoms& symptoms);

// "KeyError: 'close'" from the newest exception line at or after a Python traceback header,
// empty when there is none. Exposed for the tests.
std::string python_exception(const std::vector<std::string>& lines);

}  // namespace trading_heal::diagnoser
