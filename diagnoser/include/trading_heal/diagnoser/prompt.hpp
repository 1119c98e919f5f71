// The LLM prompt: instructions, the incident's context, and the journal lines fenced off as
// untrusted data; plus the JSON schema the answer must follow. Pure and thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "trading_heal/diagnoser/context.hpp"
#include "trading_heal/diagnoser/rules.hpp"

namespace trading_heal::diagnoser {

inline constexpr std::string_view kLogBegin = "<<<BEGIN UNTRUSTED LOG DATA>>>";
inline constexpr std::string_view kLogEnd = "<<<END UNTRUSTED LOG DATA>>>";

struct Prompt {
  std::string system;
  std::string user;
};

// `lines` must already be redacted; the context strings are redacted here as well. Lines that
// try to forge the fence markers are defused.
Prompt build_prompt(const IncidentContext& ctx, const std::vector<std::string>& lines,
                    const RuleMatch& rule);

// {cause, severity (enum), action (enum of proto::DiagnosisAction), explanation}, no other
// property: Ollama's `format`, OpenAI's response_format json_schema.
nlohmann::json answer_schema();

}  // namespace trading_heal::diagnoser
