// The LLM boundary: one blocking completion of a prompt, returning the model's text or an
// error reason. Implementations must be callable from several worker threads at once.
#pragma once

#include <string>

#include <tl/expected.hpp>

#include "trading_heal/diagnoser/prompt.hpp"

namespace trading_heal::diagnoser {

struct LlmError {
  // timeout | refused | resolve | connection | http_<status> | parse | schema | too_large |
  // cancelled | error; through the centre also unreachable | busy. These are the `reason` of
  // ollama_error events: keep them stable.
  std::string reason;
  std::string detail;
};

struct LlmCall {
  tl::expected<std::string, LlmError> content;  // the answer's text (message content)
  double latency_seconds = 0;
  std::string model;  // the model that answered, when the client learns it (else its model())
};

class LlmClient {
 public:
  virtual ~LlmClient() = default;
  virtual LlmCall complete(const Prompt& prompt) = 0;
  virtual const std::string& model() const = 0;
};

}  // namespace trading_heal::diagnoser
