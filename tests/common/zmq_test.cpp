// ZeroMQ helpers on real sockets (inproc and ipc), and the loop's ticks and signals.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <csignal>
#include <filesystem>

#include "trading_heal/common/loop.hpp"
#include "trading_heal/common/zmq.hpp"

namespace trading_heal::common {
namespace {

TEST(Zmq, IpcBindCreatesDirectoryAndSetsMode) {
  zmq::context_t ctx;
  const auto dir = std::filesystem::path(::testing::TempDir()) / ("th-zmq-" + random_boot_id());
  auto s = make_socket(ctx, zmq::socket_type::pub);
  ASSERT_TRUE(bind_endpoint(s, "ipc://" + (dir / "health.sock").string(), 0660));
  struct stat st {};
  ASSERT_EQ(::stat((dir / "health.sock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);  // only the binder may create or replace sockets
  s.close();
  std::filesystem::remove_all(dir);
}

TEST(Zmq, BindErrorNamesTheEndpoint) {
  zmq::context_t ctx;
  auto s = make_socket(ctx, zmq::socket_type::pub);
  auto r = bind_endpoint(s, "ipc:///proc/trading-heal-none/x.sock");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("/proc/trading-heal-none"), std::string::npos) << r.error();
}

TEST(Zmq, TcpWithoutCurveIsRefusedAtTheSocket) {
  zmq::context_t ctx;
  auto s = make_socket(ctx, zmq::socket_type::pull);
  auto r = bind_endpoint(s, "tcp://127.0.0.1:*");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("CURVE"), std::string::npos) << r.error();
  auto c = make_socket(ctx, zmq::socket_type::push);
  EXPECT_FALSE(connect_endpoint(c, "tcp://127.0.0.1:9"));
  char pub[41], sec[41];
  ASSERT_EQ(zmq_curve_keypair(pub, sec), 0);
  s.set(zmq::sockopt::curve_server, true);
  s.set(zmq::sockopt::curve_secretkey, sec);
  auto ok = bind_endpoint(s, "tcp://127.0.0.1:*");
  EXPECT_TRUE(ok) << ok.error();
}

TEST(Zmq, StampedMessagesTravelAndGarbageIsCounted) {
  zmq::context_t ctx;
  auto push = make_socket(ctx, zmq::socket_type::push);
  auto pull = make_socket(ctx, zmq::socket_type::pull);
  ASSERT_TRUE(bind_endpoint(pull, "inproc://t"));
  ASSERT_TRUE(connect_endpoint(push, "inproc://t"));
  FakeClock clock;
  Stamper stamper("probe", clock);
  proto::Event e;
  e.action = "restart";
  ASSERT_TRUE(send_message(push, stamper.stamp(e)));
  ASSERT_TRUE(send_message(push, stamper.stamp(e)));
  push.send(zmq::str_buffer("\xc1garbage"), zmq::send_flags::none);
  proto::RejectCounter rejects;
  std::vector<std::uint64_t> seqs;
  for (int i = 0; i < 3; ++i) {
    zmq::message_t frame;
    ASSERT_TRUE(pull.recv(frame));
    if (auto m = decode_frame(frame, rejects)) {
      EXPECT_EQ(m->env.boot_id, stamper.boot_id());
      EXPECT_DOUBLE_EQ(m->env.ts, 1785000000.0);
      seqs.push_back(m->env.seq);
    }
  }
  EXPECT_EQ(seqs, (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(rejects.count(proto::Reject::kMalformed), 1u);
  EXPECT_EQ(stamper.boot_id().size(), 32u);
}

TEST(Loop, TicksOnDeadlinesAndStopsOnSigterm) {
  SignalFd signals({SIGTERM, SIGINT, SIGHUP});
  Loop loop(signals);
  int ticks = 0;
  int hups = 0;
  loop.on_signal(SIGHUP, [&] { ++hups; });
  loop.on_tick(std::chrono::steady_clock::now(), [&](MonoTime now) {
    ++ticks;
    if (ticks == 2) ::raise(SIGHUP);
    if (ticks == 3) ::raise(SIGTERM);
    return now + std::chrono::milliseconds(5);
  });
  EXPECT_EQ(loop.run(), SIGTERM);
  EXPECT_EQ(ticks, 3);
  EXPECT_EQ(hups, 1);
}

TEST(Loop, DispatchesReadableSockets) {
  SignalFd signals({SIGTERM, SIGINT});
  zmq::context_t ctx;
  auto push = make_socket(ctx, zmq::socket_type::push);
  auto pull = make_socket(ctx, zmq::socket_type::pull);
  ASSERT_TRUE(bind_endpoint(pull, "inproc://loop"));
  ASSERT_TRUE(connect_endpoint(push, "inproc://loop"));
  Loop loop(signals);
  std::string got;
  loop.on_readable(pull, [&] {
    zmq::message_t m;
    (void)pull.recv(m, zmq::recv_flags::dontwait);
    got = m.to_string();
    loop.stop();
  });
  push.send(zmq::str_buffer("hello"), zmq::send_flags::none);
  EXPECT_EQ(loop.run(), 0);
  EXPECT_EQ(got, "hello");
}

}  // namespace
}  // namespace trading_heal::common
