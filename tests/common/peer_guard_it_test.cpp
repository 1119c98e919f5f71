// The peer guard with real sockets and real users: the kernel's credentials of an ipc peer
// (through libzmq's ZAP request) decide who may speak; a refused peer is never heard.
#include "trading_heal/common/peer_guard.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "support/bed.hpp"
#include "support/process.hpp"
#include "trading_heal/common/zmq.hpp"

namespace trading_heal::common {
namespace {

using namespace std::chrono_literals;

// Real sockets: a ROUTER allowing uid 65533 only; a peer as 65534 is refused (its message never
// arrives), one as 65533 is heard.
TEST(PeerGuard, ARefusedPeerIsNeverHeard) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run the peers as other users";
  const auto dir = std::filesystem::temp_directory_path() / ("th-guard-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  ::chmod(dir.c_str(), 0755);
  const std::string ep = "ipc://" + (dir / "in.sock").string();
  zmq::context_t ctx;
  PeerGuard guard(ctx, "test");
  auto router = make_socket(ctx, zmq::socket_type::router);
  guard.protect(router, "intake", PeerPolicy{{65533}, {}});
  ASSERT_TRUE(bind_endpoint(router, ep, 0666));
  auto run = [&](uid_t uid) {
    auto c = test::Child::spawn({test::Bed::bin("peer_sender"), ep, std::to_string(uid),
                                 std::to_string(uid)});
    std::vector<std::string> got;
    const auto until = std::chrono::steady_clock::now() + 3s;
    while (std::chrono::steady_clock::now() < until && c.running()) {
      zmq::pollitem_t items[] = {{guard.socket().handle(), 0, ZMQ_POLLIN, 0},
                                 {router.handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 2, 50ms);
      guard.on_request();
      zmq::message_t id, body;
      while (router.recv(id, zmq::recv_flags::dontwait)) {
        (void)router.recv(body, zmq::recv_flags::dontwait);
        got.push_back(body.to_string());
      }
    }
    EXPECT_EQ(c.wait(5s), 0);
    return got;
  };
  EXPECT_TRUE(run(65534).empty()) << "a refused peer was heard";
  EXPECT_EQ(guard.refused(), 1U);
  EXPECT_EQ(run(65533), (std::vector<std::string>{"hello"}));
  EXPECT_EQ(guard.allowed(), 1U);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace trading_heal::common
