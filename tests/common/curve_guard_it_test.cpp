// The peer guard on a CURVE tcp socket over loopback: a listed key is admitted and its messages
// carry the host bound to that key; an unknown key, a client without CURVE and bytes that are
// not ZMTP are refused and counted; a key added to the list is admitted after reload_hosts
// (SIGHUP). Real libzmq I/O: an integration test (no bed).
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

#include "support/temp_dir.hpp"
#include "trading_heal/common/curve.hpp"
#include "trading_heal/common/peer_guard.hpp"

namespace trading_heal::common {
namespace {

namespace fs = std::filesystem;

using test::TempDir;

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

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
  EXPECT_EQ(received_[0].second, "host:alpha") << "the host bound to the key, not what it says";
  EXPECT_EQ(host_of_peer(received_[0].second.c_str(), "centre"), "alpha");
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

  pump([] { return false; }, std::chrono::milliseconds(300));  // nothing of theirs, even later
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
  EXPECT_EQ(received_[0].second, "host:beta");
}

}  // namespace
}  // namespace trading_heal::common
