// The real LLM client: libcurl to Ollama's /api/chat or an OpenAI-compatible
// /v1/chat/completions (llama.cpp, vLLM). Thread-safe: each call uses its own easy handle.
#pragma once

#include <atomic>
#include <string>

#include <nlohmann/json.hpp>

#include "trading_heal/common/config.hpp"
#include "trading_heal/diagnoser/llm.hpp"

namespace trading_heal::diagnoser {

// curl_global_init/cleanup: construct one in main before any thread exists.
class CurlGlobal {
 public:
  CurlGlobal();
  ~CurlGlobal();
  CurlGlobal(const CurlGlobal&) = delete;
  CurlGlobal& operator=(const CurlGlobal&) = delete;
};

class OllamaClient final : public LlmClient {
 public:
  // `cancel` set to true aborts every request in flight (checked by curl's progress callback,
  // so within a few hundred milliseconds) with reason "cancelled".
  OllamaClient(const common::OllamaConfig& cfg, const std::atomic<bool>& cancel);
  LlmCall complete(const Prompt& prompt) override;
  const std::string& model() const override { return cfg_.model; }

  // Pure pieces, exposed for the tests.
  std::string url() const;
  nlohmann::json request_body(const Prompt& prompt) const;
  // The answer's text from a 200 response body, or parse error (e.g. cut off by length).
  tl::expected<std::string, LlmError> content_of(const std::string& body) const;

 private:
  common::OllamaConfig cfg_;
  const std::atomic<bool>& cancel_;
};

}  // namespace trading_heal::diagnoser
