#include "ollama_api.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>

namespace trading_heal::fake_ollama {
namespace {

using nlohmann::json;

constexpr std::string_view kGarbage =
    "I looked at the logs you sent. The agent does not look very happy: it may be the database, "
    "or the exchange, or possibly the network. I would probably restart it and keep an eye on "
    "it, but it is hard to say without more context.";

constexpr std::string_view kRamble =
    "Looking at the journal again, the heartbeat stops right after the order book refresh, which "
    "suggests the writer thread waits on something it never gets. ";

std::int64_t ns(std::chrono::nanoseconds d) { return static_cast<std::int64_t>(d.count()); }

// Ollama's timing and token counters; the split of total_duration is invented but consistent.
void add_stats(json& j, const Completion& c, std::size_t prompt_chars, const Timing& t) {
  const auto total = std::max(t.total, std::chrono::nanoseconds(1000));
  const auto load = total / 50;
  const auto prompt_eval = total / 5;
  j["total_duration"] = ns(total);
  j["load_duration"] = ns(load);
  j["prompt_eval_count"] = std::max<std::size_t>(1, prompt_chars / 4);
  j["prompt_eval_duration"] = ns(prompt_eval);
  j["eval_count"] = std::max<std::size_t>(1, c.content.size() / 4);
  j["eval_duration"] = ns(total - load - prompt_eval);
}

json native_chunk(Api api, const std::string& model, const std::string& text,
                  const std::string& created) {
  json j{{"model", model}, {"created_at", created}};
  if (api == Api::kChat) {
    j["message"] = {{"role", "assistant"}, {"content", text}};
  } else {
    j["response"] = text;
  }
  j["done"] = false;
  return j;
}

json native_final(Api api, const std::string& model, const std::string& text, const Completion& c,
                  std::size_t prompt_chars, const Timing& t) {
  json j = native_chunk(api, model, text, rfc3339(t.now));
  j["done"] = true;
  j["done_reason"] = c.done_reason;
  if (api == Api::kGenerate) j["context"] = {151644, 8948, 198};  // deprecated, still sent
  add_stats(j, c, prompt_chars, t);
  return j;
}

json openai_usage(const Completion& c, std::size_t prompt_chars) {
  const auto prompt = std::max<std::size_t>(1, prompt_chars / 4);
  const auto completion = std::max<std::size_t>(1, c.content.size() / 4);
  return {{"prompt_tokens", prompt},
          {"completion_tokens", completion},
          {"total_tokens", prompt + completion}};
}

std::int64_t unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

Completion content_for(Mode mode, const json& answer) {
  const std::string compact = answer.dump();
  switch (mode) {
    case Mode::kGarbage:
      return {std::string(kGarbage)};
    case Mode::kFenced:
      return {"Here is my analysis of the journal lines:\n```json\n" + answer.dump(2) + "\n```\n"};
    case Mode::kTruncated:
      return {compact.substr(0, compact.size() / 2), "length"};
    case Mode::kLong: {
      std::string out;
      out.reserve(kLongContentBytes + compact.size());
      while (out.size() < kLongContentBytes) out += kRamble;
      return {out + compact};
    }
    default:
      return {compact};
  }
}

std::string rfc3339(std::chrono::system_clock::time_point t) {
  const auto secs = std::chrono::floor<std::chrono::seconds>(t);
  const auto frac = std::chrono::duration_cast<std::chrono::nanoseconds>(t - secs).count();
  const std::time_t tt = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  std::array<char, 64> buf{};
  std::snprintf(buf.data(), buf.size(), "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(frac));
  return buf.data();
}

std::size_t prompt_chars(Api api, const json& request) {
  std::size_t n = 0;
  auto add = [&n](const json& v) {
    if (v.is_string()) n += v.get_ref<const std::string&>().size();
  };
  if (api == Api::kGenerate) {
    add(request.value("prompt", json()));
    add(request.value("system", json()));
    return n;
  }
  const auto messages = request.value("messages", json::array());
  if (!messages.is_array()) return n;
  for (const auto& m : messages) {
    if (m.is_object()) add(m.value("content", json()));
  }
  return n;
}

json final_response(Api api, const std::string& model, const Completion& c,
                    std::size_t prompt_chars, const Timing& t, std::uint64_t id) {
  if (api != Api::kOpenAiChat) return native_final(api, model, c.content, c, prompt_chars, t);
  return {{"id", "chatcmpl-" + std::to_string(id)},
          {"object", "chat.completion"},
          {"created", unix_seconds(t.now)},
          {"model", model},
          {"system_fingerprint", "fp_ollama"},
          {"choices", json::array({{{"index", 0},
                                    {"message", {{"role", "assistant"}, {"content", c.content}}},
                                    {"finish_reason", c.done_reason}}})},
          {"usage", openai_usage(c, prompt_chars)}};
}

std::vector<std::string> stream_pieces(Api api, const std::string& model, const Completion& c,
                                       std::size_t prompt_chars, const Timing& t, std::uint64_t id,
                                       std::size_t piece) {
  piece = std::max<std::size_t>(piece, 1);
  std::vector<std::string> out;
  out.reserve(c.content.size() / piece + 3);
  const std::string created = rfc3339(t.now);
  auto sse_chunk = [&](const std::string& text, const json& finish) {
    json j{{"id", "chatcmpl-" + std::to_string(id)},
           {"object", "chat.completion.chunk"},
           {"created", unix_seconds(t.now)},
           {"model", model},
           {"system_fingerprint", "fp_ollama"},
           {"choices", json::array({{{"index", 0},
                                     {"delta", {{"role", "assistant"}, {"content", text}}},
                                     {"finish_reason", finish}}})}};
    return "data: " + j.dump() + "\n\n";
  };
  for (std::size_t off = 0; off < c.content.size(); off += piece) {
    const std::string text = c.content.substr(off, piece);
    if (api == Api::kOpenAiChat) {
      out.push_back(sse_chunk(text, nullptr));
    } else {
      out.push_back(native_chunk(api, model, text, created).dump() + "\n");
    }
  }
  if (api == Api::kOpenAiChat) {
    out.push_back(sse_chunk("", c.done_reason));
    out.emplace_back("data: [DONE]\n\n");
  } else {
    out.push_back(native_final(api, model, "", c, prompt_chars, t).dump() + "\n");
  }
  return out;
}

json error_body(Api api, int status, const std::string& message) {
  if (api != Api::kOpenAiChat) return {{"error", message}};
  const char* type = status == 400   ? "invalid_request_error"
                     : status == 404 ? "not_found_error"
                                     : "api_error";
  return {{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}}}};
}

std::string model_not_found(const std::string& model) {
  return "model \"" + model + "\" not found, try pulling it first";
}

json tags(const std::vector<std::string>& models, std::chrono::system_clock::time_point now) {
  auto list = json::array();
  for (const auto& m : models) {
    list.push_back({{"name", m},
                    {"model", m},
                    {"modified_at", rfc3339(now)},
                    {"size", 4683087332LL},
                    {"digest", "2b0496514337a3d5901f1d253d01726c890b721e891335a56d6e08cedf3e2cb0"},
                    {"details",
                     {{"parent_model", ""},
                      {"format", "gguf"},
                      {"family", "qwen2"},
                      {"families", {"qwen2"}},
                      {"parameter_size", "7.6B"},
                      {"quantization_level", "Q4_K_M"}}}});
  }
  return {{"models", list}};
}

json openai_models(const std::vector<std::string>& models,
                   std::chrono::system_clock::time_point now) {
  auto data = json::array();
  for (const auto& m : models) {
    data.push_back(
        {{"id", m}, {"object", "model"}, {"created", unix_seconds(now)}, {"owned_by", "library"}});
  }
  return {{"object", "list"}, {"data", data}};
}

json version() { return {{"version", "0.5.7"}}; }

}  // namespace trading_heal::fake_ollama
