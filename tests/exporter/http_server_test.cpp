// The HTTP server through the metrics server on loopback (threads and sockets of this process,
// no other process): clients that do not read their answers hold no worker.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "support/net.hpp"
#include "trading_heal/exporter/http_server.hpp"
#include "trading_heal/exporter/metrics_http.hpp"

namespace trading_heal::exporter {
namespace {

using namespace std::chrono_literals;
using test::connect_loopback;

bool send_all(int fd, const std::string& s) {
  return ::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
}

// Reads one whole answer (Content-Length framed); returns the body's length, or -1.
long read_answer(int fd) {
  std::string got;
  char buf[65536];
  std::size_t head_end = std::string::npos;
  long length = -1;
  for (;;) {
    const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    if (r <= 0) return -1;
    got.append(buf, static_cast<std::size_t>(r));
    if (head_end == std::string::npos) {
      head_end = got.find("\r\n\r\n");
      if (head_end == std::string::npos) continue;
      const auto p = got.find("Content-Length: ");
      if (p == std::string::npos || p > head_end) return -1;
      length = std::stol(got.substr(p + 16));
    }
    if (got.size() >= head_end + 4 + static_cast<std::size_t>(length)) return length;
  }
}

TEST(HttpServerTest, ClientsThatDoNotReadHoldNoWorker) {
  const std::string filler(8u << 20, 'x');  // far more than loopback socket buffers take
  MetricsHttp http(
      "127.0.0.1:0", [&](std::string& out) { out += filler; }, 2);
  auto port = http.bind();
  ASSERT_TRUE(port) << port.error();
  http.start();
  // Twice as many non-reading clients as workers; each gets its answer started.
  std::vector<int> slow;
  for (int i = 0; i < 4; ++i) {
    const int fd = connect_loopback(*port, 4096);
    ASSERT_GE(fd, 0);
    slow.push_back(fd);
    ASSERT_TRUE(send_all(fd, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"));
  }
  for (int fd : slow) {
    pollfd answer_started{fd, POLLIN, 0};
    EXPECT_EQ(::poll(&answer_started, 1, 3000), 1) << "a non-reading client waits for a worker";
  }
  // A scraper that reads is answered in full, on a kept-alive connection twice.
  const int fd = connect_loopback(*port, 0);
  ASSERT_GE(fd, 0);
  timeval tv{3, 0};  // a scraper waiting for a worker held by the slow clients fails here
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  for (int round = 0; round < 2; ++round) {
    ASSERT_TRUE(send_all(fd, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"));
    EXPECT_GT(read_answer(fd), static_cast<long>(filler.size())) << "round " << round;
  }
  ::close(fd);
  // A slow reader that does read at last gets the whole answer.
  EXPECT_GT(read_answer(slow[0]), static_cast<long>(filler.size()));
  for (int s : slow) ::close(s);
  http.stop();
}

// Three requests in one send on a kept-alive connection: HEAD (the length, no body), an unknown
// path (404), then a POST with a body (405 and the connection closed, its body never taken for
// a request), answered in order.
TEST(HttpServerTest, PipelinedRequestsAreAnsweredInOrderAndABodyEndsTheConnection) {
  MetricsHttp http(
      "127.0.0.1:0", [](std::string& out) { out += "x 1\n"; }, 2);
  auto port = http.bind();
  ASSERT_TRUE(port) << port.error();
  http.start();
  const int fd = connect_loopback(*port, 0);
  ASSERT_GE(fd, 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ASSERT_TRUE(send_all(fd,
                       "HEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\n"
                       "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"
                       "POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 23\r\n\r\n"
                       "GET /metrics HTTP/1.1\r\n"));
  std::string got;
  char buf[4096];
  ssize_t r = 0;
  while ((r = ::recv(fd, buf, sizeof buf, 0)) > 0) got.append(buf, static_cast<std::size_t>(r));
  ::close(fd);
  EXPECT_EQ(r, 0) << "not closed after the request with a body";
  const auto head = got.find("HTTP/1.1 200 OK\r\n");
  const auto nope = got.find("HTTP/1.1 404 Not Found\r\n");
  const auto post = got.find("HTTP/1.1 405 Method Not Allowed\r\n");
  ASSERT_EQ(head, 0U) << got;
  ASSERT_NE(nope, std::string::npos) << got;
  ASSERT_NE(post, std::string::npos) << got;
  EXPECT_LT(nope, post);
  EXPECT_EQ(got.find("x 1"), std::string::npos) << "HEAD was given a body";
  // HEAD: the length of the body a GET would get (its self-metrics and the model's line), and
  // no body: the next answer follows the head at once.
  const std::string head_answer = got.substr(0, nope);
  ASSERT_GE(head_answer.size(), 4U);
  EXPECT_EQ(head_answer.substr(head_answer.size() - 4), "\r\n\r\n") << "HEAD was given a body";
  const auto length_at = head_answer.find("Content-Length: ");
  ASSERT_NE(length_at, std::string::npos) << head_answer;
  EXPECT_GT(std::stol(head_answer.substr(length_at + 16)), 100L) << head_answer;
  EXPECT_NE(head_answer.find("Keep-Alive: timeout=5, max=99"), std::string::npos) << head_answer;
  EXPECT_NE(got.find("Allow: GET, HEAD", post), std::string::npos);
  EXPECT_NE(got.find("Connection: close", post), std::string::npos);
  EXPECT_EQ(got.find("HTTP/1.1", post + 1), std::string::npos)
      << "the body was taken for a request";
  http.stop();
}

TEST(HttpServerTest, QueriesAndPathsArePercentDecoded) {
  const auto q =
      parse_query("symbol=BTC%2DUSDT&since=2026-12-01T00%3A00%3A00Z&a+b=c+d&&flag&x=1&x=2");
  ASSERT_EQ(q.size(), 6U);
  EXPECT_EQ(q.find("symbol")->second, "BTC-USDT");
  EXPECT_EQ(q.find("since")->second, "2026-12-01T00:00:00Z");
  EXPECT_EQ(q.find("a b")->second, "c d");
  EXPECT_EQ(q.find("flag")->second, "");
  EXPECT_EQ(q.count("x"), 2U);
  EXPECT_EQ(percent_decode("/a%2fb+c", false), "/a/b+c");
  EXPECT_EQ(percent_decode("%zz%4", true), "%zz%4");  // bad escapes stay as sent
  EXPECT_TRUE(parse_query("").empty());
}

}  // namespace
}  // namespace trading_heal::exporter
