// The event loop's fd handling: a handler may stop watching fds (its own among them).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>

#include "trading_heal/common/loop.hpp"

namespace trading_heal::common {
namespace {

TEST(Loop, AHandlerMayRemoveFdsAndTheOthersKeepWorking) {
  SignalFd signals({SIGTERM, SIGINT});
  Loop loop(signals);
  int a[2], b[2];
  ASSERT_EQ(::pipe(a), 0);
  ASSERT_EQ(::pipe(b), 0);
  int a_calls = 0, b_calls = 0;
  loop.on_fd(a[0], [&] {
    ++a_calls;
    char c;
    (void)!::read(a[0], &c, 1);
    loop.remove_fd(a[0]);  // its own fd, while handlers run
  });
  loop.on_fd(b[0], [&] {
    ++b_calls;
    char c;
    (void)!::read(b[0], &c, 1);
    if (b_calls == 2) loop.stop();
  });
  // Both readable in the first round; afterwards only b's handler may run.
  ASSERT_EQ(::write(a[1], "xx", 2), 2);
  ASSERT_EQ(::write(b[1], "y", 1), 1);
  int rounds = 0;
  loop.on_tick(std::chrono::steady_clock::now(), [&](MonoTime now) {
    if (++rounds == 3) (void)!::write(b[1], "y", 1);
    return now + std::chrono::milliseconds(1);
  });
  loop.run();
  EXPECT_EQ(a_calls, 1) << "a removed fd (still readable) was dispatched again";
  EXPECT_EQ(b_calls, 2);
  for (int fd : {a[0], a[1], b[0], b[1]}) ::close(fd);
}

}  // namespace
}  // namespace trading_heal::common
