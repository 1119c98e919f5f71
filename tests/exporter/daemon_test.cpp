// trading-heal-exporter as a process: the reliable intake under kill -9 (the loss test), HTTP
// answers and hostile clients, SIGHUP reopen, metrics scraped and checked by promtool.
// Needs no testbed part: ipc:// endpoints in a temp dir and loopback ports chosen by the kernel.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "support/bed.hpp"
#include "support/net.hpp"
#include "support/process.hpp"
#include "support/wait.hpp"
#include "trading_heal/common/reliable.hpp"
#include "trading_heal/exporter/audit_format.hpp"
#include "trading_heal/exporter/audit_reader.hpp"

namespace trading_heal::exporter {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::Bed;
using test::Child;
using test::wait_until;

struct Running {
  Child child;
  int metrics_port = 0;
  int api_port = 0;
};

class ExporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("th-exp-" + common::random_boot_id().substr(0, 8));
    fs::create_directories(dir_ / "data");
    env_ = {{"TRADING_HEAL_RUNTIME_DIR", (dir_ / "rt").string()},
            {"TRADING_HEAL_DATA_DIR", (dir_ / "data").string()},
            {"TRADING_HEAL_METRICS_LISTEN", "127.0.0.1:0"},
            {"TRADING_HEAL_API_LISTEN", "127.0.0.1:0"},
            {"TRADING_HEAL_INTERVAL", "0.5"},
            {"TRADING_HEAL_HOST", "bed"},
            {"TRADING_HEAL_LOG_LEVEL", "warning"},
            {"TRADING_HEAL_AGENTS", "BTC_USDT,ETH_USDT,BTC_USDT_conservative"}};
  }
  void TearDown() override { fs::remove_all(dir_); }

  Running start(const std::map<std::string, std::string>& extra = {}) {
    auto env = env_;
    for (const auto& [k, v] : extra) env[k] = v;
    Running r{Child::spawn({Bed::bin("trading-heal-exporter")}, env, true)};
    auto line = r.child.read_line(15s);
    EXPECT_TRUE(line) << "exporter did not start";
    if (line) {
      std::sscanf(line->c_str(), "listening metrics_port=%d api_port=%d", &r.metrics_port,
                  &r.api_port);
    }
    EXPECT_GT(r.api_port, 0);
    return r;
  }
  std::string events_endpoint() const {
    return "ipc://" + (dir_ / "rt" / "exporter" / "events.sock").string();
  }
  std::string audit_path() const { return (dir_ / "data" / kAuditFileName).string(); }
  std::vector<std::string> audit_lines(const std::string& path = {}) const {
    std::ifstream in(path.empty() ? audit_path() : path);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }

  fs::path dir_;
  std::map<std::string, std::string> env_;
};

// Sends `n` audit events from `source` through a ReliableSender (on-disk outbox) until all are
// acknowledged or `stop` is set. Runs on its own thread with its own context.
struct Sender {
  std::string source;
  int n = 0;
  std::string endpoint;
  std::string outbox_path;
  std::atomic<bool> stop{false};
  std::atomic<int> sent{0};
  std::atomic<bool> done{false};
  std::function<proto::Event(int)> make = [](int i) {
    proto::Event e;
    e.action = i % 10 == 0 ? "restart" : "diagnosis";
    e.agent = i % 2 == 0 ? "BTC_USDT" : "ETH_USDT";
    e.symbol = i % 2 == 0 ? "BTC-USDT" : "ETH-USDT";
    e.detail = "event " + std::to_string(i);
    return e;
  };

  void run() {
    zmq::context_t ctx;
    common::SystemClock clock;
    auto box = common::Outbox::open(outbox_path);
    ASSERT_TRUE(box) << box.error();
    common::Stamper stamper(source, clock);
    common::ReliableSender s(ctx, endpoint, **box, stamper, 300ms, 512);
    while (!stop) {
      auto now = clock.mono();
      for (int k = 0; k < 64 && sent < n; ++k) {
        ASSERT_TRUE(s.send(make(sent + 1), now));
        ++sent;
      }
      zmq::pollitem_t item{s.socket().handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(sent < n ? 0 : 20));
      if ((item.revents & ZMQ_POLLIN) != 0) s.on_readable(clock.mono());
      s.on_tick(clock.mono());
      if (sent == n && s.pending() == 0) break;
    }
    done = true;
  }
};

std::optional<std::string> get(int port, const std::string& path, int* status,
                               const httplib::Headers& headers = {}) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(10, 0);
  auto r = c.Get(path.c_str(), headers);
  if (!r) return std::nullopt;
  *status = r->status;
  return r->body;
}

// A raw TCP client for what httplib's client would not send.
int connect_raw(int port) { return test::connect_loopback(port, 0, 10); }

std::string raw_request(int port, const std::string& req) {
  int fd = connect_raw(port);
  if (fd < 0) return {};
  (void)!::write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return out;
}

long rss_kb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string l; std::getline(in, l);) {
    if (l.rfind("VmRSS:", 0) == 0) return std::stol(l.substr(6));
  }
  return -1;
}

TEST_F(ExporterTest, LossTestTenThousandEventsThroughThreeKills) {
  auto ex = start();
  constexpr int kPerSender = 5000;
  std::vector<std::unique_ptr<Sender>> senders;
  for (const char* src : {"actuator", "diagnoser"}) {
    auto s = std::make_unique<Sender>();
    s->source = src;
    s->n = kPerSender;
    s->endpoint = events_endpoint();
    s->outbox_path = (dir_ / (std::string(src) + ".outbox")).string();
    senders.push_back(std::move(s));
  }
  std::vector<std::thread> threads;
  for (auto& s : senders) threads.emplace_back([&s] { s->run(); });
  const auto t0 = std::chrono::steady_clock::now();
  for (int kill = 1; kill <= 3; ++kill) {
    const std::size_t target = static_cast<std::size_t>(kill) * 2500;
    EXPECT_TRUE(wait_until([&] { return audit_lines().size() >= target; }, 120s, 5ms))
        << "kill " << kill << " lines=" << audit_lines().size();
    ex.child.signal(SIGKILL);
    ex.child.wait(5s);
    ex = start();
  }
  EXPECT_TRUE(wait_until([&] { return senders[0]->done && senders[1]->done; }, 180s, 20ms));
  for (auto& s : senders) s->stop = true;
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::map<std::string, std::multiset<std::uint64_t>> seen;
  const auto lines = audit_lines();
  for (const auto& l : lines) {
    auto id = line_identity(l);
    ASSERT_TRUE(id) << l;
    seen[id->source].insert(id->seq);
  }
  ASSERT_EQ(lines.size(), 2u * kPerSender);
  for (const char* src : {"actuator", "diagnoser"}) {
    const auto& s = seen[src];
    EXPECT_EQ(s.size(), static_cast<std::size_t>(kPerSender)) << src;
    std::set<std::uint64_t> unique(s.begin(), s.end());
    EXPECT_EQ(unique.size(), static_cast<std::size_t>(kPerSender)) << src << " has duplicates";
    EXPECT_EQ(*unique.begin(), 1u);
    EXPECT_EQ(*unique.rbegin(), static_cast<std::uint64_t>(kPerSender));
  }
  std::ostringstream out;
  EXPECT_EQ(verify_audit_files({audit_path()}, out), 0) << out.str();
  std::printf("loss test: %zu events through 3 kill -9 in %.1f s (%.0f events/s)\n", lines.size(),
              secs, static_cast<double>(lines.size()) / secs);
  ex.child.signal(SIGTERM);
  EXPECT_EQ(ex.child.wait(5s), 0);
}

TEST_F(ExporterTest, HealthStatusAuditAndMetrics) {
  auto ex = start();
  int status = 0;
  // No component speaks: /health turns 503 naming them after 3 intervals (1.5 s).
  EXPECT_TRUE(wait_until(
      [&] {
        auto b = get(ex.api_port, "/health", &status);
        return b && status == 503 && b->find("probe") != std::string::npos &&
               b->find("diagnoser") != std::string::npos &&
               b->find("actuator") != std::string::npos;
      },
      10s));
  zmq::context_t ctx;
  common::SystemClock clock;
  std::map<std::string, zmq::socket_t> pubs;
  const std::map<std::string, std::string> eps = {
      {"probe", "ipc://" + (dir_ / "rt" / "probe" / "health.sock").string()},
      {"diagnoser", "ipc://" + (dir_ / "rt" / "diagnoser" / "pub.sock").string()},
      {"actuator", "ipc://" + (dir_ / "rt" / "actuator" / "pub.sock").string()}};
  std::map<std::string, std::unique_ptr<common::Stamper>> stampers;
  for (const auto& [c, ep] : eps) {
    pubs.emplace(c, common::make_socket(ctx, zmq::socket_type::pub));
    ASSERT_TRUE(common::bind_endpoint(pubs.at(c), ep));
    stampers[c] = std::make_unique<common::Stamper>(c, clock);
  }
  auto speak = [&] {
    for (auto& [c, s] : pubs) {
      proto::Heartbeat hb;
      hb.component = c;
      hb.interval_seconds = 0.5;
      hb.stats["cycle_seconds"] = 0.125;
      common::send_message(s, stampers[c]->stamp(hb));
    }
    proto::HealthReport r;
    r.agent = "BTC_USDT";
    r.symbol = "BTC-USDT";
    r.profile = "default";
    r.verdict = proto::Verdict::kStalled;
    r.decision_age_seconds = 1500;
    r.unit_ok = r.process_ok = true;
    r.consecutive_failures = 2;
    common::send_message(pubs.at("probe"), stampers["probe"]->stamp(r));
    proto::Event st;
    st.action = "agent_state";
    st.agent = "BTC_USDT";
    st.symbol = "BTC-USDT";
    st.fields["state"] = std::string("DIAGNOSING");
    st.fields["restarts_hour"] = std::int64_t{1};
    common::send_message(pubs.at("actuator"), stampers["actuator"]->stamp(st));
  };
  EXPECT_TRUE(wait_until(
      [&] {
        speak();
        auto b = get(ex.api_port, "/health", &status);
        return b && status == 200 && *b == "{\"status\":\"ok\"}\n";
      },
      10s, 100ms));
  EXPECT_TRUE(wait_until(
      [&] {
        speak();
        auto b = get(ex.api_port, "/status", &status);
        if (!b || status != 200) return false;
        auto j = nlohmann::json::parse(*b);
        return j["agents"][0]["verdict"] == "STALLED" &&
               j["agents"][0]["incident_state"] == "DIAGNOSING";
      },
      10s, 100ms));

  // Audit events through the reliable path, then the filters.
  Sender s;
  s.source = "actuator";
  s.n = 40;
  s.endpoint = events_endpoint();
  s.outbox_path = (dir_ / "a.outbox").string();
  s.make = [](int i) {
    proto::Event e;
    const char* actions[] = {"restart", "rate_limited", "recovered", "ollama_error"};
    e.action = actions[i % 4];
    e.agent = i % 2 == 0 ? "BTC_USDT" : "ETH_USDT";
    e.symbol = i % 2 == 0 ? "BTC-USDT" : "ETH-USDT";
    e.success = i % 4 != 3;
    return e;
  };
  s.run();
  ASSERT_TRUE(s.done);
  auto body = get(ex.api_port, "/audit", &status);
  ASSERT_TRUE(body);
  EXPECT_EQ(status, 200);
  auto all = nlohmann::json::parse(*body);
  ASSERT_EQ(all.size(), 40u);
  EXPECT_EQ(all[0]["seq"], 1);
  EXPECT_EQ(all[39]["seq"], 40);
  auto btc_restart =
      nlohmann::json::parse(*get(ex.api_port, "/audit?symbol=BTC-USDT&action=restart", &status));
  EXPECT_EQ(btc_restart.size(), 10u);
  for (const auto& e : btc_restart) EXPECT_EQ(e["symbol"], "BTC-USDT");
  auto last3 = nlohmann::json::parse(*get(ex.api_port, "/audit?limit=3", &status));
  ASSERT_EQ(last3.size(), 3u);
  EXPECT_EQ(last3[2]["seq"], 40);
  auto none =
      nlohmann::json::parse(*get(ex.api_port, "/audit?since=2100-01-01T00:00:00Z", &status));
  EXPECT_TRUE(none.empty());
  auto bad = get(ex.api_port, "/audit?limit=abc", &status);
  EXPECT_EQ(status, 400);
  EXPECT_EQ(nlohmann::json::parse(*bad)["parameter"], "limit");
  get(ex.api_port, "/audit?symbol=BTC-USDT&colour=red", &status);
  EXPECT_EQ(status, 400);

  // Metrics: the lines fed above, then promtool on the real exposition.
  std::string metrics;
  EXPECT_TRUE(wait_until(
      [&] {
        speak();
        auto m = get(ex.metrics_port, "/metrics", &status);
        if (!m) return false;
        metrics = *m;
        return metrics.find(
                   "trading_selfheal_component_up{component=\"diagnoser\",host=\"bed\"} 1") !=
                   std::string::npos &&
               metrics.find(
                   "trading_selfheal_actions_total{action=\"rate_limited\",host=\"bed\",symbol="
                   "\"ETH-USDT\"} "
                   "10") != std::string::npos;
      },
      10s, 100ms))
      << metrics;
  for (const char* l :
       {"trading_agent_up{host=\"bed\",symbol=\"BTC-USDT\"} 1",
        "trading_agent_stalled{host=\"bed\",symbol=\"BTC-USDT\"} 1",
        "trading_agent_last_decision_age_seconds{host=\"bed\",symbol=\"BTC-USDT\"} 1500",
        "trading_agent_consecutive_failures{host=\"bed\",symbol=\"BTC-USDT\"} 2",
        "trading_agent_restart_total{host=\"bed\",symbol=\"BTC-USDT\"} 10",
        "trading_selfheal_probe_cycle_seconds{host=\"bed\"} 0.125",
        "trading_selfheal_audit_events_total 40"}) {
    EXPECT_NE(metrics.find(std::string(l) + "\n"), std::string::npos) << l;
  }
  const std::string prom = (dir_ / "scrape.prom").string();
  std::ofstream(prom) << metrics;
  EXPECT_EQ(std::system(("promtool check metrics < " + prom + " > " + prom + ".out 2>&1").c_str()),
            0);
  std::ifstream pout(prom + ".out");
  std::stringstream promtool_says;
  promtool_says << pout.rdbuf();
  EXPECT_EQ(promtool_says.str(), "");
  // The endpoint keeps what prometheus-cpp's Exposer served: its self-metrics, only /metrics.
  EXPECT_NE(metrics.find("# TYPE exposer_scrapes_total counter\n"), std::string::npos);
  EXPECT_NE(metrics.find("# TYPE exposer_request_latencies summary\n"), std::string::npos);
  EXPECT_TRUE(get(ex.metrics_port, "/other", &status));
  EXPECT_EQ(status, 404);

  // Silence again: the exporter notices within 3 intervals.
  EXPECT_TRUE(wait_until(
      [&] {
        auto b = get(ex.api_port, "/health", &status);
        return b && status == 503;
      },
      10s));
  ex.child.signal(SIGTERM);
  EXPECT_EQ(ex.child.wait(5s), 0);
}

TEST_F(ExporterTest, HostileHttpGetsFourHundredsOrClosedAndServiceContinues) {
  auto ex = start();
  const int port = ex.api_port;
  auto code = [](const std::string& resp) {
    return resp.size() >= 12 ? std::atoi(resp.substr(9, 3).c_str()) : 0;
  };
  const long rss0 = rss_kb(ex.child.pid());
  EXPECT_EQ(code(raw_request(
                port, "GET /" + std::string(100000, 'a') + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")),
            414);
  EXPECT_EQ(code(raw_request(
                port, "POST /status HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\n\r\nabc")),
            405);
  EXPECT_EQ(code(raw_request(port, "DELETE /audit HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")), 405);
  EXPECT_EQ(
      code(raw_request(
          port,
          "GET /audit/../../etc/passwd HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")),
      404);
  EXPECT_EQ(code(raw_request(port,
                             "GET /audit?limit=99999999999999999999 HTTP/1.1\r\nHost: "
                             "127.0.0.1\r\nConnection: close\r\n\r\n")),
            400);
  EXPECT_EQ(
      code(raw_request(port, "GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")),
      404);
  const std::string garbage =
      raw_request(port, std::string("\x16\x03\x01\x02\x00garbage\r\n\r\n", 16));
  EXPECT_TRUE(garbage.empty() || code(garbage) == 400) << garbage.substr(0, 80);
  const auto big = raw_request(port, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " +
                                         std::string(20000, 'b') + "\r\n\r\n");
  EXPECT_TRUE(big.empty() || code(big) >= 400) << big.substr(0, 80);

  // Slowloris: half requests; a normal request is still served promptly and the half
  // connections are answered 408 and closed after the 5 s head deadline.
  std::vector<int> slow;
  for (int i = 0; i < 16; ++i) {
    int fd = connect_raw(port);
    ASSERT_GE(fd, 0);
    (void)!::write(fd, "GET /health HTTP/1.1\r\nHost:", 27);
    slow.push_back(fd);
  }
  int status = 0;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(get(port, "/health", &status));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  for (int fd : slow) {
    char c;
    const auto t1 = std::chrono::steady_clock::now();
    const ssize_t n = ::read(fd, &c, 1);  // EOF (or a 4xx) once the server gives up on it
    EXPECT_LE(n, 1);
    EXPECT_LT(std::chrono::steady_clock::now() - t1, 8s);
    ::close(fd);
  }

  // 1000 concurrent connections, each with a request.
  std::vector<int> fds;
  for (int i = 0; i < 1000; ++i) {
    int fd = connect_raw(port);
    if (fd >= 0) fds.push_back(fd);
  }
  const std::string req = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  for (int fd : fds) (void)!::write(fd, req.data(), req.size());
  int answered = 0, closed = 0;
  for (int fd : fds) {
    char buf[512];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n >= 12 &&
        (std::string(buf, 12) == "HTTP/1.1 200" || std::string(buf, 12) == "HTTP/1.1 503")) {
      ++answered;
    } else {
      ++closed;
    }
    ::close(fd);
  }
  std::printf("1000 concurrent: answered=%d closed=%d\n", answered, closed);
  EXPECT_GE(answered, 900);
  EXPECT_TRUE(get(port, "/health", &status));
  const long rss1 = rss_kb(ex.child.pid());
  std::printf("rss before=%ld kB after=%ld kB\n", rss0, rss1);
  EXPECT_LT(rss1 - rss0, 64 * 1024);
  EXPECT_TRUE(ex.child.running());
  ex.child.signal(SIGTERM);
  EXPECT_EQ(ex.child.wait(5s), 0);
}

// Half requests that trickle one byte at a time, as slowloris sends them. A trickler writes a
// byte to every open connection each `period`; closed() reads what the server sent (a 408, or
// nothing) until the end of the stream.
struct Tricklers {
  struct One {
    int fd = -1;
    std::chrono::steady_clock::time_point opened;
    std::chrono::steady_clock::time_point closed_at{};
    bool closed = false;
    std::string got;
  };
  std::vector<One> conns;
  std::atomic<bool> stop{false};
  std::thread thread;

  // Opens `n` connections to `port`, each with the start of a request head.
  std::size_t open(int port, int n) {
    std::size_t ok = 0;
    for (int i = 0; i < n; ++i) {
      One c;
      c.fd = connect_raw(port);
      if (c.fd < 0) continue;
      c.opened = std::chrono::steady_clock::now();
      (void)!::send(c.fd, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", 39, MSG_NOSIGNAL);
      conns.push_back(std::move(c));
      ++ok;
    }
    return ok;
  }
  void start(std::chrono::milliseconds period) {
    thread = std::thread([this, period] {
      while (!stop) {
        for (auto& c : conns) (void)!::send(c.fd, "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        std::this_thread::sleep_for(period);  // the trickle itself: one byte per period
      }
    });
  }
  // How many the server has closed so far (reads without blocking).
  std::size_t closed() {
    std::size_t n = 0;
    for (auto& c : conns) {
      while (!c.closed) {
        char buf[512];
        const ssize_t r = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r > 0) {
          c.got.append(buf, static_cast<std::size_t>(r));
          continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
        c.closed = true;  // end of stream or reset
        c.closed_at = std::chrono::steady_clock::now();
      }
      if (c.closed) ++n;
    }
    return n;
  }
  ~Tricklers() {
    stop = true;
    if (thread.joinable()) thread.join();
    for (auto& c : conns) ::close(c.fd);
  }
};

// GET `path` on a new connection; the time it took, or nullopt if it failed.
std::optional<std::chrono::milliseconds> timed_get(int port, const std::string& path,
                                                   std::string* body = nullptr) {
  int status = 0;
  const auto t0 = std::chrono::steady_clock::now();
  auto b = get(port, path, &status);
  if (!b || (status != 200 && status != 503)) return std::nullopt;
  if (body != nullptr) *body = *b;
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               t0);
}

// Issue 6: "slowloris-style half requests -> 4xx or closed, memory bounded, service continues",
// with more trickling connections than worker threads (API 32, metrics 2): 64, then 300 more on
// each port (300 is over the metrics server's 256 connections: the oldest waiting are closed).
TEST_F(ExporterTest, TricklingClientsAreCutAndHealthAndMetricsStillAnswer) {
  auto ex = start();
  const long rss0 = rss_kb(ex.child.pid());
  // A stream client, whose request is complete: the head deadline must not cut it.
  std::atomic<bool> stream_event{false};
  std::atomic<bool> stream_open{false};
  std::thread stream([&] {
    httplib::Client c("127.0.0.1", ex.api_port);
    c.set_read_timeout(30, 0);
    std::string data;
    c.Get("/audit/stream", [&](const char* d, size_t n) {
      data.append(d, n);
      if (data.find("stream open") != std::string::npos) stream_open = true;
      if (data.find("event: audit") != std::string::npos) stream_event = true;
      return !stream_event.load();
    });
  });
  // On a failed assertion: stop the exporter first, so the stream ends and its thread joins.
  struct JoinAtExit {
    std::thread& t;
    Child& c;
    ~JoinAtExit() {
      if (!t.joinable()) return;
      if (c.running()) c.signal(SIGKILL);
      t.join();
    }
  } join_stream{stream, ex.child};
  ASSERT_TRUE(wait_until([&] { return stream_open.load(); }, 10s));
  const auto stream_since = std::chrono::steady_clock::now();

  // A kept-alive connection that goes quiet after one answer is closed after the idle timeout
  // (2 s on the API).
  {
    const int idle = connect_raw(ex.api_port);
    ASSERT_GE(idle, 0);
    const std::string one = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(::send(idle, one.data(), one.size(), MSG_NOSIGNAL), static_cast<ssize_t>(one.size()));
    std::string got;
    char buf[1024];
    ssize_t r = 0;
    std::chrono::steady_clock::time_point answered{};
    while ((r = ::read(idle, buf, sizeof buf)) > 0) {  // the answer, then the end of the stream
      if (got.empty()) answered = std::chrono::steady_clock::now();
      got.append(buf, static_cast<std::size_t>(r));
    }
    const auto quiet = std::chrono::steady_clock::now() - answered;
    EXPECT_EQ(r, 0) << "not closed within the client's 10 s read timeout";
    EXPECT_EQ(got.rfind("HTTP/1.1 ", 0), 0u) << got;
    EXPECT_NE(got.find("Keep-Alive: timeout=2"), std::string::npos) << got;
    EXPECT_GE(quiet, 1500ms);
    EXPECT_LT(quiet, 4s);
    ::close(idle);
  }

  for (const int n : {64, 300}) {
    SCOPED_TRACE("tricklers per port: " + std::to_string(n));
    Tricklers api;
    Tricklers metrics;
    ASSERT_EQ(api.open(ex.api_port, n), static_cast<std::size_t>(n));
    ASSERT_EQ(metrics.open(ex.metrics_port, n), static_cast<std::size_t>(n));
    api.start(500ms);
    metrics.start(500ms);
    // While they trickle, /health and /metrics answer promptly, again and again.
    for (int i = 0; i < 5; ++i) {
      const auto h = timed_get(ex.api_port, "/health");
      ASSERT_TRUE(h) << "/health failed";
      EXPECT_LT(*h, 1000ms) << "/health";
      std::string m;
      const auto t = timed_get(ex.metrics_port, "/metrics", &m);
      ASSERT_TRUE(t) << "/metrics failed";
      EXPECT_LT(*t, 1000ms) << "/metrics";
      EXPECT_NE(m.find("trading_selfheal_component_up{component=\"exporter\",host=\"bed\"} 1\n"),
                std::string::npos);
    }
    const long rss_busy = rss_kb(ex.child.pid());
    // Over the metrics server's limit of 256, the connections that waited longest were closed
    // for the new ones (our scrapes among them), long before the head deadline.
    const std::size_t early = metrics.closed();
    EXPECT_LT(std::chrono::steady_clock::now() - metrics.conns.back().opened, 4s);
    if (n > 256) {
      EXPECT_GE(early, static_cast<std::size_t>(n - 256)) << "over the limit";
    } else {
      EXPECT_EQ(early, 0u);
    }
    // Every trickling connection is closed: after the 5 s head deadline, or earlier at the
    // limit.
    EXPECT_TRUE(wait_until(
        [&] {
          const bool a = api.closed() == api.conns.size();
          const bool m = metrics.closed() == metrics.conns.size();
          return a && m;
        },
        12s))
        << api.closed() << " of " << api.conns.size() << " API and " << metrics.closed() << " of "
        << metrics.conns.size() << " metrics connections closed";
    std::size_t got408 = 0;
    for (auto* set : {&api, &metrics}) {
      for (const auto& c : set->conns) {
        EXPECT_LT(c.closed_at - c.opened, 8s) << "kept past the head deadline";
        EXPECT_TRUE(c.got.empty() || c.got.rfind("HTTP/1.1 408", 0) == 0) << c.got.substr(0, 40);
      }
    }
    for (const auto& c : api.conns) {
      EXPECT_GE(c.closed_at - c.opened, 4s) << "closed before the head deadline";
      if (c.got.rfind("HTTP/1.1 408", 0) == 0) ++got408;
    }
    std::printf(
        "%d tricklers per port: API 408 answers=%zu, metrics closed early (limit)=%zu, "
        "rss before=%ld kB busy=%ld kB\n",
        n, got408, early, rss0, rss_busy);
    EXPECT_LT(rss_busy - rss0, 32 * 1024) << "memory bounded";
  }
  // The stream, open for longer than the head deadline, still delivers.
  EXPECT_GT(std::chrono::steady_clock::now() - stream_since, 6s);
  Sender s;
  s.source = "actuator";
  s.n = 1;
  s.endpoint = events_endpoint();
  s.outbox_path = (dir_ / "a.outbox").string();
  s.run();
  EXPECT_TRUE(wait_until([&] { return stream_event.load(); }, 10s)) << "the stream was cut";
  stream.join();
  EXPECT_TRUE(timed_get(ex.api_port, "/health"));
  EXPECT_TRUE(ex.child.running());
  ex.child.signal(SIGTERM);
  EXPECT_EQ(ex.child.wait(5s), 0);
}

TEST_F(ExporterTest, BearerTokenGuardsStatusAndAudit) {
  const std::string token_file = (dir_ / "token").string();
  std::ofstream(token_file) << "s3cret-token-for-tests\n";
  auto ex = start({{"TRADING_HEAL_API_TOKEN_FILE", token_file}});
  int status = 0;
  get(ex.api_port, "/status", &status);
  EXPECT_EQ(status, 401);
  get(ex.api_port, "/audit", &status);
  EXPECT_EQ(status, 401);
  get(ex.api_port, "/audit", &status, {{"Authorization", "Bearer wrong"}});
  EXPECT_EQ(status, 401);
  get(ex.api_port, "/audit", &status, {{"Authorization", "Bearer s3cret-token-for-tests"}});
  EXPECT_EQ(status, 200);
  get(ex.api_port, "/health", &status);
  EXPECT_TRUE(status == 200 || status == 503);
  ex.child.signal(SIGTERM);
  EXPECT_EQ(ex.child.wait(5s), 0);
  // A missing token file is a configuration error.
  auto env = env_;
  env["TRADING_HEAL_API_TOKEN_FILE"] = (dir_ / "missing").string();
  auto bad = Child::spawn({Bed::bin("trading-heal-exporter")}, env, true);
  EXPECT_EQ(bad.wait(5s), 78);
}

// DNS rebinding: a browser page whose own name now resolves to 127.0.0.1 sends that name as
// Host; the token-protected paths answer 421 unless the name is configured. /health and
// /metrics stay as they are. And an API open to the network without a token refuses to start.
TEST_F(ExporterTest, HostHeaderAndAnonymousNetworkApiAreRefused) {
  auto ex = start({{"TRADING_HEAL_API_HOSTS", "ops.example.internal"}});
  int status = 0;
  for (const char* ok :
       {"127.0.0.1:9121", "localhost", "[::1]:9121", "OPS.example.internal:9121"}) {
    get(ex.api_port, "/status", &status, {{"Host", ok}});
    EXPECT_EQ(status, 200) << ok;
  }
  const auto body = get(ex.api_port, "/audit", &status, {{"Host", "attacker.example:9121"}});
  EXPECT_EQ(status, 421);
  EXPECT_NE(body.value_or("").find("TRADING_HEAL_API_HOSTS"), std::string::npos);
  get(ex.api_port, "/status", &status, {{"Host", "rebind.example"}});
  EXPECT_EQ(status, 421);
  get(ex.api_port, "/health", &status, {{"Host", "rebind.example"}});
  EXPECT_TRUE(status == 200 || status == 503);
  ex.child.signal(SIGTERM);
  EXPECT_EQ(ex.child.wait(5s), 0);

  auto env = env_;
  env["TRADING_HEAL_API_LISTEN"] = "0.0.0.0:0";
  auto open = Child::spawn({Bed::bin("trading-heal-exporter")}, env, true);
  EXPECT_EQ(open.wait(5s), 78) << "a network API without a token started";
  env["TRADING_HEAL_API_ALLOW_ANONYMOUS"] = "true";
  env["TRADING_HEAL_METRICS_LISTEN"] = "127.0.0.1:0";
  auto allowed = Child::spawn({Bed::bin("trading-heal-exporter")}, env, true);
  EXPECT_TRUE(allowed.read_line(15s)) << "refused although asked for on purpose";
  allowed.signal(SIGTERM);
  EXPECT_EQ(allowed.wait(5s), 0);
}

TEST_F(ExporterTest, SighupReopensAfterLogrotateAndStreamSeesEvents) {
  auto ex = start();
  // A stream client first.
  std::atomic<bool> got{false};
  std::string stream_data;
  std::mutex mu;
  std::thread client([&] {
    httplib::Client c("127.0.0.1", ex.api_port);
    c.set_read_timeout(20, 0);
    c.Get("/audit/stream?action=restart", [&](const char* data, size_t n) {
      std::lock_guard lock(mu);
      stream_data.append(data, n);
      if (stream_data.find("\"seq\":2,") != std::string::npos) got = true;
      return !got.load();
    });
  });
  EXPECT_TRUE(wait_until(
      [&] {
        std::lock_guard lock(mu);
        return stream_data.find("stream open") != std::string::npos;
      },
      10s));
  Sender s1;
  s1.source = "actuator";
  s1.n = 2;
  s1.endpoint = events_endpoint();
  s1.outbox_path = (dir_ / "a.outbox").string();
  s1.make = [](int) {
    proto::Event e;
    e.action = "restart";
    e.symbol = "BTC-USDT";
    return e;
  };
  s1.run();
  EXPECT_TRUE(wait_until([&] { return got.load(); }, 10s));
  client.join();
  EXPECT_NE(stream_data.find("event: audit\ndata: {"), std::string::npos);

  fs::rename(audit_path(), audit_path() + ".rotated");
  ex.child.signal(SIGHUP);
  EXPECT_TRUE(wait_until([&] { return fs::exists(audit_path()); }, 5s));
  Sender s2;
  s2.source = "actuator";
  s2.n = 3;
  s2.endpoint = events_endpoint();
  s2.outbox_path = (dir_ / "b.outbox").string();
  s2.run();
  EXPECT_EQ(audit_lines(audit_path() + ".rotated").size(), 2u);
  EXPECT_EQ(audit_lines().size(), 3u);
  std::ostringstream out;
  EXPECT_EQ(verify_audit_files({audit_path() + ".rotated", audit_path()}, out), 0) << out.str();
  ex.child.signal(SIGTERM);
  EXPECT_EQ(ex.child.wait(5s), 0);
}

TEST_F(ExporterTest, VerifyAuditCommandReportsTheBrokenLine) {
  {
    auto ex = start();
    Sender s;
    s.source = "probe";
    s.n = 5;
    s.endpoint = events_endpoint();
    s.outbox_path = (dir_ / "p.outbox").string();
    s.run();
    ex.child.signal(SIGTERM);
    ex.child.wait(5s);
  }
  auto ok =
      Child::spawn({Bed::bin("trading-heal-exporter"), "--verify-audit", audit_path()}, {}, true);
  EXPECT_EQ(ok.wait(5s), 0);
  auto lines = audit_lines();
  ASSERT_EQ(lines.size(), 5u);
  lines[2].replace(lines[2].find("\"success\":true"), 14, "\"success\":false");
  {
    std::ofstream out(audit_path(), std::ios::trunc);
    for (const auto& l : lines) out << l << "\n";
  }
  auto broken =
      Child::spawn({Bed::bin("trading-heal-exporter"), "--verify-audit", audit_path()}, {}, true);
  EXPECT_EQ(broken.wait(5s), 1);
  EXPECT_NE(broken.output().find(":4:"), std::string::npos) << broken.output();
}

}  // namespace
}  // namespace trading_heal::exporter
