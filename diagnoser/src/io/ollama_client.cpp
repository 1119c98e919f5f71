#include "trading_heal/diagnoser/ollama_client.hpp"
#include "trading_heal/common/text.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "trading_heal/proto/codec.hpp"

namespace trading_heal::diagnoser {
namespace {

constexpr int kNumPredict = 512;  // the answer is a small object; bounds the model's work

struct Transfer {
  std::string body;
  std::size_t cap = 0;
  bool too_large = false;
  const std::atomic<bool>* cancel = nullptr;
};

// The size cap lives here: CURLOPT_MAXFILESIZE does not stop a body without Content-Length
// before curl 8.4 (it applies during the transfer only since then; Debian 12 ships 7.88).
std::size_t on_write(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t len = size * n;
  if (t->body.size() + len > t->cap) {
    t->too_large = true;
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  t->body.append(data, len);
  return len;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* t = static_cast<Transfer*>(user);
  return t->cancel->load(std::memory_order_relaxed) ? 1 : 0;
}

// The server's words (an error body): bounded, and inert before they reach a log or the audit.
std::string short_text(const std::string& s) { return common::inert(s.substr(0, 200)); }

LlmError curl_error(CURLcode rc, const Transfer& t, const char* errbuf) {
  std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
      return {"timeout", detail};
    case CURLE_COULDNT_CONNECT:
      return {"refused", detail};
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return {"resolve", detail};
    case CURLE_ABORTED_BY_CALLBACK:
      return {"cancelled", "shutting down"};
    case CURLE_WRITE_ERROR:
      if (t.too_large) return {"too_large", "response over " + std::to_string(t.cap) + " bytes"};
      return {"error", detail};
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
      return {"connection", detail};
    default:
      return {"error", detail};
  }
}

}  // namespace

CurlGlobal::CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
CurlGlobal::~CurlGlobal() { curl_global_cleanup(); }

OllamaClient::OllamaClient(const common::OllamaConfig& cfg, const std::atomic<bool>& cancel)
    : cfg_(cfg), cancel_(cancel) {}

std::string OllamaClient::url() const {
  return cfg_.host + (cfg_.api == common::LlmApi::kOpenAi ? "/v1/chat/completions" : "/api/chat");
}

nlohmann::json OllamaClient::request_body(const Prompt& prompt) const {
  nlohmann::json messages = nlohmann::json::array({{{"role", "system"}, {"content", prompt.system}},
                                                   {{"role", "user"}, {"content", prompt.user}}});
  if (cfg_.api == common::LlmApi::kOpenAi) {
    return {{"model", cfg_.model},
            {"messages", std::move(messages)},
            {"stream", false},
            {"temperature", 0},
            {"max_tokens", kNumPredict},
            {"response_format",
             {{"type", "json_schema"},
              {"json_schema",
               {{"name", "diagnosis"}, {"strict", true}, {"schema", answer_schema()}}}}}};
  }
  return {{"model", cfg_.model},
          {"messages", std::move(messages)},
          {"stream", false},
          {"format", answer_schema()},
          {"options", {{"temperature", 0}, {"num_predict", kNumPredict}}},
          {"keep_alive", cfg_.keep_alive}};
}

tl::expected<std::string, LlmError> OllamaClient::content_of(const std::string& body) const {
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return tl::unexpected(LlmError{"parse", "response body is not a JSON object"});
  }
  const nlohmann::json* content = nullptr;
  std::string stop;
  if (cfg_.api == common::LlmApi::kOpenAi) {
    if (j.contains("choices") && j["choices"].is_array() && !j["choices"].empty() &&
        j["choices"][0].is_object()) {
      const auto& c = j["choices"][0];
      if (c.contains("message") && c["message"].is_object() && c["message"].contains("content")) {
        content = &c["message"]["content"];
      }
      if (c.contains("finish_reason") && c["finish_reason"].is_string()) {
        stop = c["finish_reason"].get<std::string>();
      }
    }
  } else {
    if (j.contains("message") && j["message"].is_object() && j["message"].contains("content")) {
      content = &j["message"]["content"];
    }
    if (j.contains("done_reason") && j["done_reason"].is_string()) {
      stop = j["done_reason"].get<std::string>();
    }
  }
  if (stop == "length") {
    return tl::unexpected(LlmError{"parse", "answer cut off (length limit)"});
  }
  if (content == nullptr || !content->is_string()) {
    return tl::unexpected(LlmError{"parse", "response has no message content"});
  }
  return content->get<std::string>();
}

LlmCall OllamaClient::complete(const Prompt& prompt) {
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> h(curl_easy_init(), &curl_easy_cleanup);
  if (!h) return {tl::unexpected(LlmError{"error", "curl_easy_init failed"}), 0, {}};
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(
      curl_slist_append(nullptr, "Content-Type: application/json"), &curl_slist_free_all);
  const std::string body =
      request_body(prompt).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const std::string target = url();
  Transfer t;
  // The envelope escapes the content: allow room for it around the answer's own cap.
  t.cap = cfg_.max_answer_bytes * 2 + std::size_t{16} * 1024;
  t.cancel = &cancel_;
  char errbuf[CURL_ERROR_SIZE] = {0};
  const long total_ms = static_cast<long>(cfg_.timeout.count());
  CURL* c = h.get();
  curl_easy_setopt(c, CURLOPT_URL, target.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_PROXY, "");  // never through an environment proxy
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, std::min(total_ms, 5000L));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, total_ms);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &on_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "trading-heal-diagnoser");
  if (cancel_.load()) return {tl::unexpected(LlmError{"cancelled", "shutting down"}), 0, {}};
  const CURLcode rc = curl_easy_perform(c);
  const double latency = elapsed();
  if (rc != CURLE_OK) return {tl::unexpected(curl_error(rc, t, errbuf)), latency, {}};
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    std::string detail = short_text(t.body);
    const auto j = nlohmann::json::parse(t.body, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("error")) {
      const auto& e = j["error"];
      if (e.is_string()) detail = short_text(e.get<std::string>());
      if (e.is_object() && e.contains("message") && e["message"].is_string()) {
        detail = short_text(e["message"].get<std::string>());
      }
    }
    return {tl::unexpected(LlmError{"http_" + std::to_string(status), detail}), latency, {}};
  }
  return {content_of(t.body), latency, {}};
}

}  // namespace trading_heal::diagnoser
