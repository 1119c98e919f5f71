// The diagnosis pipeline's pure steps: raw journal lines → redaction → rules → fingerprint →
// prompt (prepare), and the LLM's answer (or failure) → a validated Diagnosis (decide).
// Pure and thread-safe.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "trading_heal/diagnoser/answer.hpp"
#include "trading_heal/diagnoser/context.hpp"
#include "trading_heal/diagnoser/llm.hpp"
#include "trading_heal/diagnoser/prompt.hpp"
#include "trading_heal/diagnoser/rule_table.hpp"
#include "trading_heal/diagnoser/rules.hpp"

namespace trading_heal::diagnoser {

struct Prepared {
  IncidentContext context;
  std::vector<std::string> lines;  // redacted
  RuleMatch rule;
  std::string fingerprint;
  Prompt prompt;
};

// `rules`: the classifier's table (the shipped file and the operator's rules.d, or the built-in).
Prepared prepare(const IncidentContext& ctx, const std::vector<std::string>& raw_lines,
                 const RuleTable& rules = builtin_rules());

struct Outcome {
  proto::Diagnosis diagnosis;
  std::optional<LlmError> llm_error;  // the LLM was asked and its answer is not used
};

// The rule-based diagnosis (source "rules").
proto::Diagnosis rules_diagnosis(const Prepared& p, const std::string& incident);

// With `call` null (LLM disabled) the rules stand; otherwise a valid answer gives an "llm"
// diagnosis (category and target still ours), and any failure the rules plus the error.
Outcome decide(const Prepared& p, const LlmCall* call, const std::string& model,
               const std::string& incident, std::size_t max_answer_bytes);

}  // namespace trading_heal::diagnoser
