// One diagnosis end to end with a fake clock, a scripted journal and a scripted model: the cache
// answers a repeat within its TTL without asking the model, not after; an operator's request is
// never answered from the cache; the journal read is timed by the injected clock.
#include "trading_heal/diagnoser/analyst.hpp"

#include <gtest/gtest.h>

namespace trading_heal::diagnoser {
namespace {

using namespace std::chrono_literals;

class ScriptedModel final : public LlmClient {
 public:
  LlmCall complete(const Prompt&) override {
    ++calls;
    return LlmCall{std::string(R"({"cause":"Lock held by a vacuum","severity":"critical",)"
                               R"("action":"wait","explanation":"e"})"),
                   1.5,
                   {}};
  }
  const std::string& model() const override { return name_; }
  int calls = 0;

 private:
  std::string name_ = "scripted";
};

Job job(const std::string& origin) {
  Job j;
  j.context.agent = "BTC_USDT";
  j.context.unit = "crypto-agent@BTC_USDT.service";
  j.context.symbol = "BTC-USDT";
  j.context.profile = "default";
  j.context.verdict = proto::Verdict::kStalled;
  j.incident = "BTC_USDT-1";
  j.origin = origin;
  return j;
}

TEST(Analyst, TheCacheAnswersARepeatWithinItsTtlByTheInjectedClock) {
  common::FakeClock clock;
  ScriptedModel model;
  int reads = 0;
  Analyst analyst(
      [&](const std::string&) -> tl::expected<std::vector<std::string>, std::string> {
        ++reads;
        clock.advance(250ms);  // the journal read takes a quarter of a second
        return std::vector<std::string>{"ERROR canceling statement due to lock timeout"};
      },
      &model, 60s, 65536, clock);
  const Result first = analyst.run(job("health"));
  EXPECT_EQ(first.outcome.diagnosis.source, "llm");
  EXPECT_EQ(first.outcome.diagnosis.cause, "Lock held by a vacuum");
  EXPECT_DOUBLE_EQ(first.journal_seconds, 0.25);
  EXPECT_EQ(model.calls, 1);

  clock.advance(30s);
  const Result repeat = analyst.run(job("health"));
  EXPECT_TRUE(repeat.cache_hit);
  EXPECT_EQ(repeat.outcome.diagnosis.source, "cache");
  EXPECT_EQ(model.calls, 1) << "answered from the cache";

  const Result asked = analyst.run(job("command"));
  EXPECT_FALSE(asked.cache_hit) << "an operator asking wants a fresh look";
  EXPECT_EQ(model.calls, 2);

  clock.advance(61s);
  const Result stale = analyst.run(job("health"));
  EXPECT_FALSE(stale.cache_hit) << "past the TTL";
  EXPECT_EQ(model.calls, 3);
  EXPECT_EQ(reads, 4);
  EXPECT_EQ(analyst.cache_hits(), 1U);
}

}  // namespace
}  // namespace trading_heal::diagnoser
