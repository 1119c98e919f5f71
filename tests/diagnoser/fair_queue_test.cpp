// FairQueue: round robin over the hosts, and a full queue shared rather than taken by one host.
#include "trading_heal/diagnoser/fair_queue.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace trading_heal::diagnoser {
namespace {

using Queue = FairQueue<std::string>;

std::vector<std::string> drain(Queue& q) {
  std::vector<std::string> out;
  while (auto t = q.pop()) out.push_back(t->host + ":" + t->item);
  return out;
}

TEST(FairQueue, ServesTheHostsInTurnEachInItsOwnOrder) {
  Queue q;
  for (const char* r : {"a1", "a2", "a3"}) EXPECT_FALSE(q.push("alpha", r, 10));
  EXPECT_FALSE(q.push("beta", "b1", 10));
  EXPECT_FALSE(q.push("gamma", "g1", 10));
  EXPECT_FALSE(q.push("beta", "b2", 10));
  EXPECT_EQ(q.size(), 6U);
  EXPECT_EQ(drain(q), (std::vector<std::string>{"alpha:a1", "beta:b1", "gamma:g1", "alpha:a2",
                                                "beta:b2", "alpha:a3"}));
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.pop());
}

TEST(FairQueue, AFullQueueGivesTheBurstingHostsNewestPlaceToAnotherHost) {
  Queue q;
  for (const char* r : {"a1", "a2", "a3", "a4"}) EXPECT_FALSE(q.push("alpha", r, 4));
  // Full: alpha's own fifth is refused, a host with nothing queued takes alpha's newest place.
  auto refused = q.push("alpha", "a5", 4);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->host, "alpha");
  EXPECT_EQ(refused->item, "a5");
  auto evicted = q.push("beta", "b1", 4);
  ASSERT_TRUE(evicted);
  EXPECT_EQ(evicted->host, "alpha");
  EXPECT_EQ(evicted->item, "a4");
  EXPECT_EQ(q.size(), 4U);
  // beta's second: alpha still holds three, and its a3 gives way (two against two).
  auto again = q.push("beta", "b2", 4);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->item, "a3");
  EXPECT_EQ(q.count("alpha"), 2U);
  EXPECT_EQ(q.count("beta"), 2U);
  // Even now: neither host gives way to the other.
  auto even = q.push("beta", "b3", 4);
  ASSERT_TRUE(even);
  EXPECT_EQ(even->host, "beta");
  EXPECT_EQ(even->item, "b3");
  EXPECT_EQ(drain(q), (std::vector<std::string>{"alpha:a1", "beta:b1", "alpha:a2", "beta:b2"}));
}

TEST(FairQueue, TheLimitIsWhatIsFreeNowAndAHostEmptiedLosesItsTurn) {
  Queue q;
  // Nothing free (every place taken by requests in flight): refused, even with nothing queued.
  auto none = q.push("alpha", "a1", 0);
  ASSERT_TRUE(none);
  EXPECT_EQ(none->item, "a1");
  EXPECT_FALSE(q.push("alpha", "a1", 2));
  EXPECT_FALSE(q.push("alpha", "a2", 2));
  // beta takes alpha's newest; alpha, left with one, keeps its turn, first.
  auto evicted = q.push("beta", "b1", 2);
  ASSERT_TRUE(evicted);
  EXPECT_EQ(evicted->item, "a2");
  auto first = q.pop();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->item, "a1");
  EXPECT_EQ(q.count("alpha"), 0U);
  auto second = q.pop();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->item, "b1");
  EXPECT_FALSE(q.pop());
}

}  // namespace
}  // namespace trading_heal::diagnoser
