// CURVE between hosts: key files (made, checked, refused), the allow-list of host keys, and the
// peer guard on a tcp socket over loopback: a listed key is admitted and its messages carry the
// host bound to that key; an unknown key, a client without CURVE and bytes that are not ZMTP are
// refused and counted; a key added to the list is admitted after reload_hosts (SIGHUP).
#include "trading_heal/common/curve.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include <gtest/gtest.h>
#include <zmq.hpp>

#include "trading_heal/common/config.hpp"
#include "trading_heal/common/peer_guard.hpp"

namespace trading_heal::common {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string t = (fs::temp_directory_path() / "th-curve-XXXXXX").string();
    path_ = ::mkdtemp(t.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& str() const { return path_; }

 private:
  std::string path_;
};

void write(const std::string& path, const std::string& text, mode_t mode = 0644) {
  std::ofstream(path) << text;
  ::chmod(path.c_str(), mode);
}

TEST(Curve, KeyFilesAreMadeOnceAndTheSecretOneIsCheckedWhenRead) {
  TempDir d;
  auto w = write_key_files(d.str(), "host-a");
  ASSERT_TRUE(w) << w.error();
  EXPECT_EQ(fs::status(w->secret_path).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
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
  write(d.str() + "/host-a.pub", "# comment\n" + a.public_z85 + "\n");
  write(d.str() + "/host-b.pub", b.public_z85);
  write(d.str() + "/copy-of-b.pub", b.public_z85);  // one key, two names: neither
  write(d.str() + "/-bad-name.pub", c.public_z85);
  write(d.str() + "/garbage.pub", "hello");
  write(d.str() + "/README", "not a key file: ignored");
  const auto list = HostAllowList::load(d.str());
  EXPECT_EQ(list.size(), 1U);
  EXPECT_EQ(list.host_of(*decode_curve_key(a.public_z85)), "host-a");
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

// A server (PULL, bound on loopback tcp) behind the guard, and clients of every kind.
class CurveGuard : public ::testing::Test {
 protected:
  void SetUp() override {
    server_keys_ = generate_curve_keys();
    alpha_ = generate_curve_keys();
    write(hosts_.str() + "/alpha.pub", alpha_.public_z85);
    guard_.use_curve(CurveSetup{server_keys_, "", hosts_.str()});
    guard_.protect(server_, "events", PeerPolicy{}, "tcp://127.0.0.1:0", Side::kBind);
    server_.set(zmq::sockopt::linger, 0);
    server_.bind("tcp://127.0.0.1:*");
    endpoint_ = server_.get(zmq::sockopt::last_endpoint);
  }

  zmq::socket_t client(const CurveKeyPair* keys) {
    zmq::socket_t s(ctx_, zmq::socket_type::push);
    s.set(zmq::sockopt::linger, 0);
    if (keys != nullptr) {
      s.set(zmq::sockopt::curve_serverkey, server_keys_.public_z85);
      s.set(zmq::sockopt::curve_publickey, keys->public_z85);
      s.set(zmq::sockopt::curve_secretkey, keys->secret_z85);
    }
    s.connect(endpoint_);
    return s;
  }

  // Serves the guard until `done` or `limit`; the received messages' text and User-Id.
  bool pump(const std::function<bool()>& done,
            std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      guard_.on_request();
      guard_.on_monitor();
      zmq::message_t m;
      while (server_.recv(m, zmq::recv_flags::dontwait)) {
        received_.emplace_back(m.to_string(), m.gets("User-Id"));
      }
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  zmq::context_t ctx_;
  TempDir hosts_;
  CurveKeyPair server_keys_, alpha_;
  PeerGuard guard_{ctx_, "test"};
  zmq::socket_t server_{ctx_, zmq::socket_type::pull};
  std::string endpoint_;
  std::vector<std::pair<std::string, std::string>> received_;
};

TEST_F(CurveGuard, AListedKeyIsAdmittedAndItsMessagesCarryItsHost) {
  auto a = client(&alpha_);
  a.send(zmq::str_buffer("from alpha"));
  ASSERT_TRUE(pump([&] { return !received_.empty(); }));
  EXPECT_EQ(received_[0].first, "from alpha");
  EXPECT_EQ(received_[0].second, "alpha") << "the host bound to the key, not what it says";
  EXPECT_EQ(guard_.allowed(), 1U);
  EXPECT_EQ(guard_.refused(), 0U);
}

TEST_F(CurveGuard, UnknownKeysPlainClientsAndGarbageAreRefusedAndCounted) {
  const auto stranger = generate_curve_keys();
  auto s = client(&stranger);
  s.send(zmq::str_buffer("from a stranger"));
  ASSERT_TRUE(pump([&] { return guard_.refused() >= 1; }));
  EXPECT_EQ(guard_.handshake_failures(), 0U) << "a refused key is a ZAP refusal";

  auto plain = client(nullptr);
  plain.send(zmq::str_buffer("without CURVE"));
  ASSERT_TRUE(pump([&] { return guard_.handshake_failures() >= 1; }));

  // Bytes that are not ZMTP.
  const auto port = std::stoi(endpoint_.substr(endpoint_.rfind(':') + 1));
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string junk = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" + std::string(200, 'x');
  ASSERT_GT(::write(fd, junk.data(), junk.size()), 0);
  const auto before = guard_.handshake_failures();
  EXPECT_TRUE(pump([&] { return guard_.handshake_failures() > before; }));
  ::close(fd);

  pump([] { return false; }) ;  // nothing of theirs arrives, even later
  EXPECT_TRUE(received_.empty());
  EXPECT_EQ(guard_.allowed(), 0U);
}

TEST_F(CurveGuard, AKeyAddedToTheListIsAdmittedAfterAReload) {
  const auto beta = generate_curve_keys();
  write(hosts_.str() + "/beta.pub", beta.public_z85);
  guard_.reload_hosts();
  EXPECT_EQ(guard_.hosts_admitted(), 2U);
  auto b = client(&beta);
  b.send(zmq::str_buffer("from beta"));
  ASSERT_TRUE(pump([&] { return !received_.empty(); }));
  EXPECT_EQ(received_[0].second, "beta");
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
