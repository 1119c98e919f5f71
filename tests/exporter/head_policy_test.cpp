// When the HTTP server gives up on a request head (head_policy.hpp), on a fake clock.
#include <gtest/gtest.h>

#include "trading_heal/exporter/head_policy.hpp"

namespace trading_heal::exporter {
namespace {

using namespace std::chrono_literals;

const HeadTimeouts kApi{.header = 5s, .idle = 2s};

TEST(HeadPolicy, ANewConnectionHasItsWholeHeadDueFromTheAcceptHoweverItTrickles) {
  common::FakeClock clock;
  const auto d = head_deadlines(clock.mono(), true, kApi);
  clock.advance(4900ms);
  EXPECT_EQ(late_head(d, clock.mono(), 0), std::nullopt)
      << "no idle deadline before a first request";
  EXPECT_EQ(late_head(d, clock.mono(), 30), std::nullopt);
  clock.advance(100ms);
  EXPECT_EQ(late_head(d, clock.mono(), 30), 408) << "bytes came: answered";
  EXPECT_EQ(late_head(d, clock.mono(), 0), 0) << "nothing came: closed quietly";
}

TEST(HeadPolicy, AKeptAliveConnectionMustBeginWithinIdleAndFinishWithinHeader) {
  common::FakeClock clock;
  const auto answered = clock.mono();
  const auto d = head_deadlines(answered, false, kApi);
  EXPECT_EQ(next_head_deadline(d, 0), answered + 2s);
  EXPECT_EQ(next_head_deadline(d, 1), answered + 5s);
  clock.advance(2s);
  EXPECT_EQ(late_head(d, clock.mono(), 0), 0) << "idle: closed quietly";
  EXPECT_EQ(late_head(d, clock.mono(), 12), std::nullopt) << "begun in time: the head's deadline";
  clock.advance(3s);
  EXPECT_EQ(late_head(d, clock.mono(), 12), 408);
}

TEST(HeadPolicy, AnIdleTimeoutLongerThanTheHeadsIsCappedByIt) {
  const common::MonoTime t0{std::chrono::hours(1)};
  const auto d = head_deadlines(t0, false, {.header = 5s, .idle = 30s});
  EXPECT_EQ(d.first_byte, t0 + 5s);
  EXPECT_EQ(d.complete, t0 + 5s);
}

}  // namespace
}  // namespace trading_heal::exporter
