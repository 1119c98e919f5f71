// The learned stall threshold (TRADING_HEAL_STALL_THRESHOLD=auto): the rule that the probe and
// trading-heal-replay --rhythm share, its bounds, "enough history", the summary the learning
// query returns, and the per-agent table.
#include "trading_heal/probe/learned_threshold.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace {

using namespace trading_heal::probe;

constexpr double kStart = 1785000000;  // 2026-07-25T17:20:00Z

// Decisions every `period` s for `hours`, from kStart.
std::vector<double> every(double period, double hours) {
  std::vector<double> ts;
  for (double t = kStart; t < kStart + hours * 3600; t += period) ts.push_back(t);
  return ts;
}

TEST(LearnedThreshold, TheLargerOfMinAndThreeTimesTheP999WithinMax) {
  const ThresholdRule rule;  // min 300 s, max 3600 s, k = 3
  // Every 5 s for two days: 3 x 5 s is below the floor.
  auto fast = recommend(summarize(every(5, 48)), rule);
  EXPECT_TRUE(fast.enough);
  EXPECT_DOUBLE_EQ(fast.p999_s, 5);
  EXPECT_DOUBLE_EQ(fast.threshold_s, 300);
  // Every 200 s for a week: 3 x 200 s.
  auto slow = recommend(summarize(every(200, 7 * 24)), rule);
  EXPECT_TRUE(slow.enough) << slow.gaps << " gaps";
  EXPECT_DOUBLE_EQ(slow.threshold_s, 600);
  // Every 2000 s for a month: 3 x 2000 s is over the maximum.
  auto rare = recommend(summarize(every(2000, 30 * 24)), rule);
  EXPECT_TRUE(rare.enough);
  EXPECT_DOUBLE_EQ(rare.threshold_s, 3600);
  // The bounds are the operator's: with MIN 5 s and MAX 60 s, a 1 s agent gets max(5, 3 x 1),
  // a 4 s one 3 x 4, a 200 s one 60.
  ThresholdRule tight = rule;
  tight.min_s = 5;
  tight.max_s = 60;
  EXPECT_DOUBLE_EQ(recommend(summarize(every(1, 25)), tight).threshold_s, 5);
  EXPECT_DOUBLE_EQ(recommend(summarize(every(4, 25)), tight).threshold_s, 12);
  EXPECT_DOUBLE_EQ(recommend(summarize(every(200, 7 * 24)), tight).threshold_s, 60);
}

TEST(LearnedThreshold, EnoughHistoryIsAThousandGapsOverADay) {
  const ThresholdRule rule;
  // 999 gaps over two days: too few.
  auto few = recommend(summarize(every(48 * 3600 / 999.0, 48)), rule);
  EXPECT_LT(few.gaps, 1000U);
  EXPECT_FALSE(few.enough);
  EXPECT_EQ(few.threshold_s, 0);
  // 36000 gaps over ten hours: too short.
  auto short_span = recommend(summarize(every(1, 10)), rule);
  EXPECT_GE(short_span.gaps, 1000U);
  EXPECT_LT(short_span.span_s, 86400);
  EXPECT_FALSE(short_span.enough);
  // One old decision a day back and a thousand recent ones: a day spanned, a thousand gaps.
  auto seeded = every(1, 0.3);
  seeded.push_back(kStart - 86400);
  auto r = recommend(summarize(seeded), rule);
  EXPECT_TRUE(r.enough);
  EXPECT_DOUBLE_EQ(r.p999_s, 1) << "the day-long gap is the longest one, beyond the p99.9";
  EXPECT_EQ(recommend(summarize({}), rule).gaps, 0U);
  EXPECT_FALSE(recommend(summarize({kStart}), rule).enough);
}

TEST(LearnedThreshold, AQuietHourIsLeftOutOfTheP999) {
  // Every 60 s, except a nightly pause 22:00-06:00 UTC: one 8 h gap a night, begun at 21 h.
  std::vector<double> ts;
  const double day0 = std::floor(kStart / 86400) * 86400;
  for (double t = day0; t < day0 + 14 * 86400; t += 60) {
    const double hour = std::fmod(t, 86400) / 3600;
    if (hour >= 6 && hour < 22) ts.push_back(t);
  }
  const auto r = recommend(summarize(ts), ThresholdRule{});
  EXPECT_TRUE(r.hour_dependent);
  ASSERT_EQ(r.quiet_hours, std::vector<int>{21});
  EXPECT_DOUBLE_EQ(r.p999_s, 60);
  EXPECT_DOUBLE_EQ(r.threshold_s, 300);
}

// What the rule reads of the learning query's answer is what it reads of every timestamp: the
// p99.9 from each hour's longest gaps equals the p99.9 of all the gaps, for any mix of hours.
TEST(LearnedThreshold, TheSummarysLongestGapsGiveTheExactP999) {
  std::mt19937_64 rng(20);
  for (int run = 0; run < 20; ++run) {
    std::vector<double> ts;
    double t = kStart;
    std::exponential_distribution<double> gap(1.0 / (1 + run * 7));
    std::uniform_real_distribution<double> u(0, 1);
    const std::size_t n = 1000 + static_cast<std::size_t>(u(rng) * 20000);
    for (std::size_t i = 0; i < n; ++i) {
      ts.push_back(t);
      t += gap(rng) + (u(rng) < 0.002 ? 3600 : 0);  // a few long stalls
    }
    std::vector<double> gaps;
    for (std::size_t i = 1; i < ts.size(); ++i) gaps.push_back(ts[i] - ts[i - 1]);
    std::sort(gaps.begin(), gaps.end());
    const auto s = summarize(ts);
    EXPECT_EQ(s.gaps(), gaps.size());
    EXPECT_NEAR(s.span_s(), ts.back() - ts.front(), 1e-3);
    const auto r = recommend(s, ThresholdRule{});
    if (!r.hour_dependent) {
      EXPECT_DOUBLE_EQ(r.p999_s, nearest_rank(gaps, 0.999)) << "run " << run;
    }
    for (const auto& h : s.hours) EXPECT_LE(h.longest.size(), tail_needed(gaps.size()));
  }
}

TEST(LearnedThreshold, TheQuerysRowsMakeTheSameSummary) {
  auto ts = every(7, 30);
  const auto direct = summarize(ts);
  std::vector<LearnRow> rows;
  for (int h = 0; h < 24; ++h) {
    const auto& g = direct.hours[static_cast<std::size_t>(h)];
    if (g.count == 0) continue;
    rows.push_back(LearnRow{"BTC-USDT", "default", h, g.count, g.p99_s, g.sum_s, g.longest});
  }
  rows.push_back(LearnRow{"BTC-USDT", "default", 24, 5, 1, 5, {1}});  // not an hour: dropped
  const auto by_key = summaries_of(rows);
  ASSERT_EQ(by_key.size(), 1U);
  const auto& s = by_key.at({"BTC-USDT", "default"});
  EXPECT_EQ(s.gaps(), direct.gaps());
  EXPECT_EQ(recommend(s, ThresholdRule{}).threshold_s,
            recommend(direct, ThresholdRule{}).threshold_s);
  EXPECT_EQ(parse_float_array("{9.5,7,1e-05}"), (std::vector<double>{9.5, 7, 1e-05}));
  EXPECT_EQ(parse_float_array("{}"), std::vector<double>{});
  EXPECT_FALSE(parse_float_array("{1,NULL}"));
  EXPECT_FALSE(parse_float_array("1,2"));
}

TEST(LearnedThreshold, TheTableGivesTheFixedThresholdUntilTheHistoryIsEnough) {
  ThresholdRule rule;
  rule.min_s = 5;
  ThresholdTable t({{"BTC-USDT", "default"}, {"ETH-USDT", "default"}, {"SOL-USDT", "x"}}, 600);
  EXPECT_EQ(t.at(0), (AgentThreshold{600, false}));
  std::map<std::pair<std::string, std::string>, GapSummary> learned;
  learned[{"BTC-USDT", "default"}] = summarize(every(2, 30));  // enough: 3 x 2 s
  learned[{"ETH-USDT", "default"}] = summarize(every(2, 3));   // three hours: not enough
  EXPECT_EQ(t.learn(learned, rule), std::vector<std::size_t>{0});
  EXPECT_EQ(t.at(0), (AgentThreshold{6, true}));
  EXPECT_EQ(t.at(1), (AgentThreshold{600, false}));
  EXPECT_TRUE(t.recommendation(1));
  EXPECT_FALSE(t.recommendation(1)->enough);
  EXPECT_EQ(t.at(2), (AgentThreshold{600, false})) << "no decision in the window";
  EXPECT_FALSE(t.recommendation(2));
  EXPECT_EQ(t.learned_count(), 1U);
  EXPECT_TRUE(t.learn(learned, rule).empty()) << "the same answer changes nothing";
  // The history left the window: back to the fixed threshold.
  EXPECT_EQ(t.learn({}, rule), std::vector<std::size_t>{0});
  EXPECT_EQ(t.at(0), (AgentThreshold{600, false}));
}

}  // namespace
