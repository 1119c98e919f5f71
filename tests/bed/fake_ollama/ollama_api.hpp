// Pure builders of Ollama's wire format (native /api/* and OpenAI-compatible /v1/*): no I/O, no
// clock reads; the server passes the time in.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fake_state.hpp"

namespace trading_heal::fake_ollama {

enum class Api { kChat, kGenerate, kOpenAiChat };

// What the "model" says, and why it stopped ("stop", or "length" when cut off).
struct Completion {
  std::string content;
  std::string done_reason = "stop";
};

// Size of Mode::kLong's content: larger than any sane client cap (the diagnoser's included).
inline constexpr std::size_t kLongContentBytes = 2 * 1024 * 1024;

// The content for a mode that answers 200 (ok/slow/garbage/fenced/truncated/long/close).
Completion content_for(Mode mode, const nlohmann::json& answer);

struct Timing {
  std::chrono::system_clock::time_point now;
  std::chrono::nanoseconds total;  // from request received to answer complete
};

// Go's RFC 3339 with nanoseconds, in UTC: "2024-05-01T12:00:00.123456789Z".
std::string rfc3339(std::chrono::system_clock::time_point t);

// Rough prompt size in characters: messages[].content for chat, prompt (+ system) for generate.
std::size_t prompt_chars(Api api, const nlohmann::json& request);

// The single object answered when stream is false.
nlohmann::json final_response(Api api, const std::string& model, const Completion& c,
                              std::size_t prompt_chars, const Timing& t, std::uint64_t id);

// The streamed body, one element per write: NDJSON lines ("{...}\n", the last with done:true) for
// the native API, SSE events ("data: {...}\n\n" ... "data: [DONE]\n\n") for /v1.
// `piece` is how many content bytes go in each chunk (a "token").
std::vector<std::string> stream_pieces(Api api, const std::string& model, const Completion& c,
                                       std::size_t prompt_chars, const Timing& t, std::uint64_t id,
                                       std::size_t piece);

// Ollama's error body: {"error":"..."} natively, {"error":{"message","type",...}} on /v1.
nlohmann::json error_body(Api api, int status, const std::string& message);
std::string model_not_found(const std::string& model);

nlohmann::json tags(const std::vector<std::string>& models,
                    std::chrono::system_clock::time_point now);
nlohmann::json openai_models(const std::vector<std::string>& models,
                             std::chrono::system_clock::time_point now);
nlohmann::json version();

}  // namespace trading_heal::fake_ollama
