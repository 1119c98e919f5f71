// Parsing an LLM answer: tolerant extraction (```json fences, leading or trailing prose), then
// strict validation against the answer schema. Pure and thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include "trading_heal/proto/messages.hpp"

namespace trading_heal::diagnoser {

inline constexpr std::size_t kMaxCauseBytes = 300;
inline constexpr std::size_t kMaxExplanationBytes = 2000;

// cause and explanation are untrusted text made inert here, at the source: one line each
// (line breaks and tabs as spaces), every other control character shown escaped
// (common::inert), valid UTF-8. The byte limits above apply to that form.
struct LlmAnswer {
  std::string cause;
  proto::Severity severity = proto::Severity::kMedium;
  proto::DiagnosisAction action = proto::DiagnosisAction::kAutoRestart;
  std::string explanation;
};

struct AnswerError {
  std::string reason;  // parse | schema | too_large
  std::string detail;  // quotes of the answer in it are inert too
};

// The JSON object text inside `text`: the content of the first ``` fence if any, then from
// the first '{' to the last '}'. Empty when there is no object.
std::string_view extract_json_object(std::string_view text);

tl::expected<LlmAnswer, AnswerError> parse_answer(std::string_view text, std::size_t max_bytes);

}  // namespace trading_heal::diagnoser
