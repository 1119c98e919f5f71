// The peer guard: the kernel's credentials of an ipc peer (through libzmq's ZAP request) decide
// who may speak on a socket; a refused peer's message never arrives, and is counted.
#include "trading_heal/common/peer_guard.hpp"

#include <gtest/gtest.h>

namespace trading_heal::common {
namespace {

TEST(PeerGuard, ParsesTheKernelsCredentialsFromTheZapAddress) {
  auto c = parse_peer_address("localhost:997:996:4242");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->uid, 997U);
  EXPECT_EQ(c->gid, 996U);
  EXPECT_EQ(c->pid, 4242);
  for (const char* bad : {"127.0.0.1", "localhost:1:2", "localhost:a:2:3", "remote:1:2:3", "",
                          "localhost:1:2:3:4", "localhost:99999999999:1:1"}) {
    EXPECT_FALSE(parse_peer_address(bad)) << bad;
  }
}

std::vector<gid_t> fake_groups(const PeerCreds& peer) {
  if (peer.uid == 1001) return {peer.gid, 500};  // alice, in the operators' group 500
  return {peer.gid};
}

TEST(PeerGuard, UsersGroupsAndRoot) {
  PeerPolicy p{{997}, {500}};
  EXPECT_TRUE(peer_allowed({997, 997, 1}, p, fake_groups));
  EXPECT_TRUE(peer_allowed({1001, 1001, 1}, p, fake_groups)) << "a supplementary group";
  EXPECT_TRUE(peer_allowed({0, 0, 1}, p, fake_groups)) << "root";
  EXPECT_FALSE(peer_allowed({998, 998, 1}, p, fake_groups));
  EXPECT_FALSE(peer_allowed({65534, 65534, 1}, PeerPolicy{}, fake_groups));
  EXPECT_TRUE(uid_of("root") && *uid_of("root") == 0);
  EXPECT_FALSE(uid_of("no-such-user-th"));
  EXPECT_TRUE(gid_of("123") && *gid_of("123") == 123);
}

}  // namespace
}  // namespace trading_heal::common
