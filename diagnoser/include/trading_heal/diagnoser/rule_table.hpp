// The classifier's rules as data: the rules-file parser, the compiled-in table and the loader
// of the shipped file plus the operators' rules.d. The format is documented at the top of
// deploy/rules/trading-heal.rules. parse_rules and builtin_rules are pure and thread-safe;
// load_rules reads files and belongs to the shell (at start-up), never to classify().
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "trading_heal/proto/messages.hpp"

namespace trading_heal::diagnoser {

// Where the package installs deploy/rules/trading-heal.rules, and the operators' extensions.
inline constexpr std::string_view kDefaultRulesFile =
    "/usr/share/trading-heal/rules/trading-heal.rules";
inline constexpr std::string_view kDefaultRulesDir = "/etc/trading-heal/rules.d";

// Bounds on what an operator can feed in (input is untrusted: tolerate, report, go on).
inline constexpr std::size_t kMaxRulesFileBytes = 1 << 20;
inline constexpr std::size_t kMaxRuleCategoryBytes = 48;
inline constexpr std::size_t kMaxRuleCauseBytes = 200;
inline constexpr std::size_t kMaxRuleKeywordBytes = 200;

struct Rule {
  std::string category;
  std::string cause;
  proto::Severity severity = proto::Severity::kMedium;
  proto::DiagnosisAction action = proto::DiagnosisAction::kAutoRestart;
  std::vector<std::string> keywords;  // lower case (ASCII), none empty; any one matches
  std::string origin;                 // "FILE:LINE" of its `rule` line; "built-in"
};

// Rules in priority order: the first one that matches any of the recent lines wins.
using RuleTable = std::vector<Rule>;

struct RuleError {
  std::string file;
  std::size_t line = 0;  // 1-based; 0 for the file as a whole (unreadable, too big)
  std::string message;
  std::string to_string() const;  // "FILE:LINE: message", or "FILE: message"
};

struct ParsedRules {
  RuleTable rules;
  std::vector<RuleError> errors;
};

// The rules in `text`, the contents of a rules file called `file_name` (used in errors and in
// Rule::origin). Each malformed line is reported and skipped — a malformed `rule` line together
// with its `match` lines — and the rest still parse. Never throws for any input.
ParsedRules parse_rules(std::string_view text, std::string_view file_name);

// The table compiled into the diagnoser: deploy/rules/trading-heal.rules as of this build (a
// unit test keeps the two identical in meaning). The fallback when the shipped file cannot be
// read, and what classify() without a table uses.
const RuleTable& builtin_rules();

struct LoadedRules {
  RuleTable table;                  // the extensions' rules (files in name order), then the shipped
  std::vector<RuleError> errors;    // every problem found; none of them stops the loading
  std::vector<std::string> files;   // the files read, in the order their rules are tried
  std::size_t extension_rules = 0;  // how many of `table`'s rules come from extension_dir
  bool builtin = false;  // the shipped file was unusable (or not asked for): builtin_rules() used
};

// Reads `extension_dir`/*.rules (regular files not starting with '.', in byte order of their
// names; a missing directory is not an error) and `shipped_file`. When `shipped_file` is empty,
// cannot be read, is over kMaxRulesFileBytes or yields no rule, the compiled-in table takes its
// place (reported in `errors` unless it was empty). The result always has the built-in or the
// shipped rules: classification never runs without rules.
LoadedRules load_rules(const std::string& shipped_file, const std::string& extension_dir);

}  // namespace trading_heal::diagnoser
