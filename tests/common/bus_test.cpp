// The bookkeeping of a long-lived bus connection (BusReconnect) and the lost-connection test.
#include <gtest/gtest.h>
#include <systemd/sd-bus.h>

#include <cerrno>

#include "trading_heal/common/bus.hpp"

namespace trading_heal::common {
namespace {

using std::chrono::milliseconds;

TEST(BusReconnect, CountsEachLossOnceAndRetriesWithGrowingSpacing) {
  BusReconnect r("probe", SystemdScope::kUser);
  const MonoTime t0{std::chrono::hours(1)};
  EXPECT_FALSE(r.down());
  EXPECT_EQ(r.losses(), 0U);
  r.lost("connection reset", t0);
  r.lost("connection reset", t0 + milliseconds(1));  // the same loss seen again
  EXPECT_EQ(r.losses(), 1U);
  EXPECT_TRUE(r.attempt_due(t0));  // the first attempt at once
  r.attempt_failed("no bus", t0);
  EXPECT_FALSE(r.attempt_due(t0 + milliseconds(499)));
  EXPECT_TRUE(r.attempt_due(t0 + milliseconds(500)));
  MonoTime t = r.next_attempt();
  for (const long want : {1000, 2000, 4000, 8000, 10000, 10000}) {
    r.attempt_failed("no bus", t);
    EXPECT_EQ(r.next_attempt() - t, milliseconds(want));
    t = r.next_attempt();
  }
  r.reconnected(t, "");
  EXPECT_FALSE(r.down());
  EXPECT_FALSE(r.attempt_due(t + std::chrono::hours(1)));
  r.lost("again", t);
  EXPECT_EQ(r.losses(), 2U);
  r.attempt_failed("no bus", t);
  EXPECT_EQ(r.next_attempt() - t, BusReconnect::kFirstRetry) << "spacing starts again per loss";
}

TEST(BusReconnect, AFailedFirstConnectionIsNotALoss) {
  BusReconnect r("actuator", SystemdScope::kSystem);
  const MonoTime t0{std::chrono::hours(1)};
  r.attempt_failed("no bus yet", t0);
  EXPECT_TRUE(r.down());
  EXPECT_EQ(r.losses(), 0U);
  EXPECT_TRUE(r.attempt_due(t0 + BusReconnect::kFirstRetry));
  r.reconnected(t0 + BusReconnect::kFirstRetry, "");
  EXPECT_FALSE(r.down());
  EXPECT_EQ(r.losses(), 0U);
}

TEST(BusConnectionLost, NoOrUnopenedConnectionIsLostAPeerRefusalIsNot) {
  EXPECT_TRUE(bus_connection_lost(nullptr, -EACCES));
  sd_bus* bus = nullptr;
  ASSERT_GE(sd_bus_new(&bus), 0);  // never started: not open
  EXPECT_TRUE(bus_connection_lost(bus, -EACCES));
  sd_bus_unref(bus);
}

}  // namespace
}  // namespace trading_heal::common
