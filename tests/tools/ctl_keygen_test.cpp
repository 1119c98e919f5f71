// trading-heal-ctl keygen: a CURVE key pair a daemon accepts (the secret 0600, owned as asked),
// never replacing existing keys; needs no deployment.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/bed.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "trading_heal/common/curve.hpp"

namespace trading_heal {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

TEST(CtlKeygen, MakesAKeyPairTheDaemonsAcceptAndNeverReplacesIt) {
  const test::TempDir tmp("th-keygen");
  const std::string dir = tmp.str() + "/keys";
  const std::string ctl = test::Bed::bin("trading-heal-ctl");
  // No deployment around: the instance lookup must not be needed.
  const std::map<std::string, std::string> env = {{"TRADING_HEAL_INSTANCE", "no-such-instance"}};

  auto gen = test::Child::spawn(
      {ctl, "--json", "keygen", "host-a", "--dir", dir, "--owner", "nobody"}, env, true);
  ASSERT_EQ(gen.wait(10s), 0);
  const auto out = nlohmann::json::parse(gen.output());
  const std::string secret = out.at("secret_key_file");
  EXPECT_EQ(secret, dir + "/host-a.key");
  struct stat st {};
  ASSERT_EQ(::stat(secret.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U);
  EXPECT_EQ(st.st_uid, 65534U) << "owned by --owner";
  // This test runs as root, which may read a key it does not own; the key is the printed one's.
  ASSERT_EQ(::chown(secret.c_str(), ::geteuid(), ::getegid()), 0);
  auto pair = common::read_secret_key_file(secret);
  ASSERT_TRUE(pair) << pair.error();
  EXPECT_EQ(pair->public_z85, out.at("public_key"));
  auto pub = common::read_public_key_file(out.at("public_key_file"));
  ASSERT_TRUE(pub) << pub.error();
  EXPECT_EQ(*pub, pair->public_z85);

  auto again = test::Child::spawn({ctl, "keygen", "host-a", "--dir", dir}, env, true);
  EXPECT_EQ(again.wait(10s), 1) << "an existing identity is not replaced";
  auto still = common::read_secret_key_file(secret);
  ASSERT_TRUE(still);
  EXPECT_EQ(still->secret_z85, pair->secret_z85);

  auto bad = test::Child::spawn({ctl, "keygen", "../x", "--dir", dir}, env, true);
  EXPECT_EQ(bad.wait(10s), 1);
  auto none = test::Child::spawn({ctl, "keygen"}, env, true);
  EXPECT_EQ(none.wait(10s), 64);
}

}  // namespace
}  // namespace trading_heal
