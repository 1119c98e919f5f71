// CURVE between hosts: key files (made, checked, refused), the allow-list of host keys, and what
// the configuration and the guard refuse (tcp without keys). The guard over real tcp sockets is
// in curve_guard_it_test.cpp.
#include "trading_heal/common/curve.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <zmq.hpp>

#include "support/temp_dir.hpp"
#include "trading_heal/common/config.hpp"
#include "trading_heal/common/peer_guard.hpp"

namespace trading_heal::common {
namespace {

namespace fs = std::filesystem;

using test::TempDir;

void write(const std::string& path, const std::string& text, mode_t mode = 0644) {
  std::ofstream(path) << text;
  ::chmod(path.c_str(), mode);
}

TEST(Curve, KeyFilesAreMadeOnceAndTheSecretOneIsCheckedWhenRead) {
  TempDir d;
  auto w = write_key_files(d.str(), "host-a");
  ASSERT_TRUE(w) << w.error();
  EXPECT_EQ(fs::status(w->secret_path).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  auto pair = read_secret_key_file(w->secret_path);
  ASSERT_TRUE(pair) << pair.error();
  EXPECT_EQ(pair->public_z85, w->public_z85);
  auto pub = read_public_key_file(w->public_path);
  ASSERT_TRUE(pub) << pub.error();
  EXPECT_EQ(*pub, w->public_z85);

  auto again = write_key_files(d.str(), "host-a");
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().find("exists already"), std::string::npos) << again.error();
  EXPECT_FALSE(write_key_files(d.str(), "../evil"));

  ::chmod(w->secret_path.c_str(), 0640);
  auto loose = read_secret_key_file(w->secret_path);
  ASSERT_FALSE(loose);
  EXPECT_NE(loose.error().find("mode 0640"), std::string::npos) << loose.error();
  EXPECT_NE(loose.error().find(w->secret_path), std::string::npos) << "names the file";

  ::symlink(w->secret_path.c_str(), (d.str() + "/link.key").c_str());
  ::chmod(w->secret_path.c_str(), 0600);
  EXPECT_FALSE(read_secret_key_file(d.str() + "/link.key")) << "a symbolic link is refused";
  write(d.str() + "/bad.key", "not a key\n", 0600);
  auto bad = read_secret_key_file(d.str() + "/bad.key");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("not a CURVE key"), std::string::npos) << bad.error();
  EXPECT_FALSE(read_public_key_file(d.str() + "/missing.pub"));
}

TEST(Curve, TheAllowListBindsEachKeyToOneHost) {
  TempDir d;
  const auto a = generate_curve_keys();
  const auto b = generate_curve_keys();
  const auto c = generate_curve_keys();
  const auto a2 = generate_curve_keys();  // host-a's second component
  write(d.str() + "/host-a.pub", "# comment\n" + a.public_z85 + "\n" + a2.public_z85 + "\n");
  write(d.str() + "/host-b.pub", b.public_z85);
  write(d.str() + "/copy-of-b.pub", b.public_z85);  // one key, two names: neither
  write(d.str() + "/-bad-name.pub", c.public_z85);
  write(d.str() + "/garbage.pub", "hello");
  write(d.str() + "/README", "not a key file: ignored");
  const auto list = HostAllowList::load(d.str());
  EXPECT_EQ(list.size(), 2U);
  EXPECT_EQ(list.host_of(*decode_curve_key(a.public_z85)), "host-a");
  EXPECT_EQ(list.host_of(*decode_curve_key(a2.public_z85)), "host-a");
  EXPECT_FALSE(list.host_of(*decode_curve_key(b.public_z85)));
  EXPECT_FALSE(list.host_of(*decode_curve_key(c.public_z85)));
  EXPECT_EQ(list.problems().size(), 3U);
  EXPECT_EQ(HostAllowList::load(d.str() + "/none").problems().size(), 1U);
}

TEST(Curve, TheConfigurationRefusesTcpWithoutKeys) {
  const std::map<std::string, std::string> env = {
      {"TRADING_HEAL_HEALTH_ENDPOINT", "tcp://127.0.0.1:25555"}};
  auto c = load_config([&](const std::string& k) -> std::optional<std::string> {
    auto it = env.find(k);
    if (it == env.end()) return std::nullopt;
    return it->second;
  });
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().variable, "TRADING_HEAL_HEALTH_ENDPOINT");
  EXPECT_NE(c.error().message.find("TRADING_HEAL_CURVE_SECRET_KEY_FILE"), std::string::npos);
}

TEST(Curve, TcpWithoutKeysIsRefusedByTheGuard) {
  zmq::context_t ctx;
  PeerGuard guard(ctx, "test");
  zmq::socket_t s(ctx, zmq::socket_type::pull);
  EXPECT_THROW(guard.protect(s, "events", PeerPolicy{}, "tcp://127.0.0.1:1", Side::kBind),
               std::runtime_error);
  guard.use_curve(CurveSetup{generate_curve_keys(), "", ""});
  zmq::socket_t c(ctx, zmq::socket_type::push);
  EXPECT_THROW(guard.protect(c, "events", PeerPolicy{}, "tcp://127.0.0.1:1", Side::kConnect),
               std::runtime_error)
      << "connecting needs the other side's public key";
  EXPECT_NO_THROW(guard.protect(s, "events", PeerPolicy{}, "ipc:///tmp/x.sock", Side::kBind));
}

}  // namespace
}  // namespace trading_heal::common

namespace trading_heal::common {
namespace {

TEST(HostOfPeer, OnlyAHostBoundToAKeyNamesTheHost) {
  EXPECT_EQ(host_of_peer("host:alpha", "centre"), "alpha");
  EXPECT_EQ(host_of_peer("998", "centre"), "centre") << "a local peer's uid is not a host";
  EXPECT_EQ(host_of_peer(nullptr, "centre"), "centre");
  EXPECT_EQ(host_of_peer("", "centre"), "centre");
  EXPECT_EQ(host_of_peer("host:", "centre"), "centre");
  EXPECT_EQ(host_of_peer("host:bad name/..", "centre"), "centre");
}

TEST(KernelHostName, IsAValidHostName) {
  const auto name = kernel_host_name();
  EXPECT_TRUE(valid_host_name(name)) << name;
}

}  // namespace
}  // namespace trading_heal::common
