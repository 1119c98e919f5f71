// The pure parts of the HTTP client: the request body and reading the answer's envelope.
#include "trading_heal/diagnoser/ollama_client.hpp"

#include <gtest/gtest.h>

namespace trading_heal::diagnoser {
namespace {

TEST(OllamaClient, OllamaRequest) {
  std::atomic<bool> cancel{false};
  common::OllamaConfig cfg;
  cfg.host = "http://127.0.0.1:11434";
  OllamaClient c(cfg, cancel);
  EXPECT_EQ(c.url(), "http://127.0.0.1:11434/api/chat");
  const auto b = c.request_body(Prompt{"sys", "user"});
  EXPECT_EQ(b["stream"], false);
  EXPECT_EQ(b["model"], "qwen2.5-coder:7b");
  EXPECT_EQ(b["options"]["temperature"], 0);
  EXPECT_EQ(b["keep_alive"], "30m");
  EXPECT_EQ(b["format"], answer_schema());
  EXPECT_EQ(b["messages"][0]["role"], "system");
  EXPECT_EQ(b["messages"][1]["content"], "user");
  EXPECT_EQ(
      *c.content_of(
          R"({"message":{"role":"assistant","content":"{}"},"done":true,"done_reason":"stop"})"),
      "{}");
  EXPECT_EQ(
      c.content_of(R"({"message":{"content":"{\"ca"},"done_reason":"length"})").error().reason,
      "parse");
  EXPECT_EQ(c.content_of("not json").error().reason, "parse");
  EXPECT_EQ(c.content_of(R"({"done":true})").error().reason, "parse");
}

TEST(OllamaClient, OpenAiRequest) {
  std::atomic<bool> cancel{false};
  common::OllamaConfig cfg;
  cfg.api = common::LlmApi::kOpenAi;
  cfg.host = "http://127.0.0.1:8080";
  OllamaClient c(cfg, cancel);
  EXPECT_EQ(c.url(), "http://127.0.0.1:8080/v1/chat/completions");
  const auto b = c.request_body(Prompt{"sys", "user"});
  EXPECT_EQ(b["temperature"], 0);
  EXPECT_EQ(b["response_format"]["type"], "json_schema");
  EXPECT_EQ(b["response_format"]["json_schema"]["schema"], answer_schema());
  EXPECT_EQ(*c.content_of(R"({"choices":[{"message":{"content":"hi"},"finish_reason":"stop"}]})"),
            "hi");
  EXPECT_EQ(c.content_of(R"({"choices":[{"message":{"content":"h"},"finish_reason":"length"}]})")
                .error()
                .reason,
            "parse");
}

TEST(OllamaClient, RefusedWhenNothingListens) {
  // Port 9 (discard) on loopback: nothing listens on the test machines.
  std::atomic<bool> cancel{false};
  common::OllamaConfig cfg;
  cfg.host = "http://127.0.0.1:9";
  cfg.timeout = std::chrono::milliseconds(2000);
  OllamaClient c(cfg, cancel);
  const auto r = c.complete(Prompt{"s", "u"});
  ASSERT_FALSE(r.content.has_value());
  EXPECT_EQ(r.content.error().reason, "refused");
  EXPECT_LT(r.latency_seconds, 1.0);
  cancel = true;
  EXPECT_EQ(c.complete(Prompt{"s", "u"}).content.error().reason, "cancelled");
}

}  // namespace
}  // namespace trading_heal::diagnoser
