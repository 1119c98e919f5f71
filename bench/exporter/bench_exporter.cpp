// The exporter's performance goals (issue 6), measured:
//   BM_MetricsScrape*      GET /metrics with 1000 agents (~15k series) through MetricsHttp on
//                          loopback — the class and the render path trading-heal-exporter uses
//                          (plain, and with Accept-Encoding: gzip as Prometheus sends it: the
//                          answer is identity-encoded either way); goal < 10 ms.
//   BM_MetricsScrapeRaw    the same scrape read with a plain socket (request, head, then the
//                          Content-Length bytes counted and discarded): what a scrape costs the
//                          server, without httplib's client parsing the 0.93 MB. server_cpu_ms:
//                          CPU of the process minus the client thread's, per scrape.
//   BM_MetricsScrapeRawFormer   the same client against the former serving path: httplib's own
//                          accept loop and pool (listen_after_bind), the model's text appended
//                          to the self-metrics by copy; BM_MetricsScrapeFormer: the same with
//                          httplib's client.
//   BM_MetricsRender / BM_MetricsCollectSerialize   the body alone: the model's renderer vs the
//                          former prometheus-cpp path (Registry::Collect + TextSerializer).
//   BM_AuditQuery1M        GET /audit?symbol= against a real trading-heal-exporter process over
//                          a generated 1,000,000-line audit file (hash chain intact, 1000
//                          symbols, page cache warm); goal < 300 ms.
//   BM_IngestEvents        audit events acknowledged per second through the real reliable path:
//                          N ReliableSender threads (on-disk outbox, fsync per record) -> the
//                          exporter's ROUTER -> audit write + fsync per batch -> ack.
// Temporary files go to $TMPDIR (the audit file needs ~350 MB); they are removed at exit.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "support/net.hpp"
#include "support/process.hpp"
#include "trading_heal/common/reliable.hpp"
#include "trading_heal/common/zmq.hpp"
#include "trading_heal/exporter/audit_format.hpp"
#include "trading_heal/exporter/audit_log.hpp"
#include "trading_heal/exporter/metrics_http.hpp"
#include "trading_heal/exporter/metrics_model.hpp"
#include "trading_heal/exporter/sha256.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace trading_heal;
using trading_heal::test::connect_loopback;

constexpr int kAgents = 1000;
constexpr int kAuditLines = 1000000;

std::string agent_instance(int i) {
  return "C" + std::to_string(i) + (i % 10 == 0 ? "_USDT_aggressive" : "_USDT");
}

fs::path temp_root() {
  static const fs::path root = [] {
    fs::path p = fs::temp_directory_path() / ("th-bench-exporter-" + std::to_string(::getpid()));
    fs::create_directories(p);
    return p;
  }();
  return root;
}

struct Cleanup {
  ~Cleanup() {
    std::error_code ec;
    fs::remove_all(temp_root(), ec);
  }
};

// ---------------------------------------------------------------------------------------------
// /metrics

struct MetricsFixture {
  prometheus::Registry registry;
  std::unique_ptr<exporter::MetricsModel> model;
  std::unique_ptr<exporter::MetricsHttp> http;
  int port = 0;

  MetricsFixture() {
    std::vector<common::AgentSpec> agents;
    for (int i = 0; i < kAgents; ++i) {
      common::AgentSpec a;
      a.instance = agent_instance(i);
      std::tie(a.symbol, a.profile) = common::symbol_and_profile(a.instance);
      agents.push_back(a);
    }
    model = std::make_unique<exporter::MetricsModel>(registry, agents);
    for (const auto& a : agents) {
      proto::HealthReport r;
      r.agent = a.instance;
      r.symbol = a.symbol;
      r.profile = a.profile;
      r.verdict = proto::Verdict::kHealthy;
      r.decision_age_seconds = 3.25;
      r.unit_ok = r.process_ok = r.age_ok = true;
      r.rss_bytes = 150 << 20;
      r.cpu_ratio = 0.12;
      r.heartbeat_age_seconds = 2.5;
      model->on_health(r);
      proto::Event e;
      e.agent = a.instance;
      e.symbol = a.symbol;
      e.profile = a.profile;
      e.success = true;
      for (const char* action : {"diagnosis", "restart", "recovered", "rate_limited"}) {
        e.action = action;
        e.fields.clear();
        if (e.action == "diagnosis") e.fields["latency_seconds"] = 6.5;
        model->on_event(e);
      }
    }
    http = std::make_unique<exporter::MetricsHttp>(
        "127.0.0.1:0", [this](std::string& out) { model->render(out); });
    port = *http->bind();
    http->start();
  }
};

MetricsFixture& metrics_fixture() {
  static MetricsFixture f;
  return f;
}

std::size_t count_series(const std::string& text) {
  std::size_t n = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t end = text.find('\n', pos);
    if (text[pos] != '#') ++n;
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return n;
}

void scrape(benchmark::State& state, bool gzip, int port) {
  httplib::Client c("127.0.0.1", port);
  c.set_keep_alive(true);
  c.set_read_timeout(10, 0);
  httplib::Headers headers;
  if (gzip) headers.emplace("Accept-Encoding", "gzip");
  std::size_t bytes = 0;
  std::size_t series = 0;
  for (auto _ : state) {
    auto r = c.Get("/metrics", headers);
    if (!r || r->status != 200) {
      state.SkipWithError("GET /metrics failed");
      return;
    }
    bytes = r->body.size();
    if (series == 0) series = count_series(r->body);
    benchmark::DoNotOptimize(r->body.data());
  }
  state.counters["body_bytes"] = static_cast<double>(bytes);
  state.counters["series"] = static_cast<double>(series);
}

void BM_MetricsScrape(benchmark::State& state) { scrape(state, false, metrics_fixture().port); }
void BM_MetricsScrapeGzip(benchmark::State& state) { scrape(state, true, metrics_fixture().port); }

// The former MetricsHttp serving path, for comparison: httplib's accept loop with 2 pool
// threads, the body made as before (self-metrics text, then `text += render()`).
struct FormerServer {
  httplib::Server server;
  std::thread thread;
  int port = 0;
  explicit FormerServer(MetricsFixture& f) {
    server.new_task_queue = [] { return new httplib::ThreadPool(2); };
    server.set_keep_alive_timeout(5);
    server.Get("/metrics", [&f](const httplib::Request& req, httplib::Response& res) {
      const_cast<httplib::Request&>(req).headers.erase("Accept-Encoding");
      std::string text = "# (the ~1 KB of exposer_* self-metrics stood here)\n";
      text += f.model->render();
      res.body = std::move(text);
      res.set_header("Content-Type", "text/plain; charset=utf-8");
    });
    port = server.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { server.listen_after_bind(); });
  }
  ~FormerServer() {
    server.stop();
    thread.join();
  }
};

// One GET /metrics on a kept-alive socket: the head is looked at (status, Content-Length), the
// body's bytes are counted into a reused buffer. Returns the body size, or 0 on failure;
// `close` tells that the server ends the connection after this answer (keep-alive max).
std::size_t raw_scrape(int fd, std::vector<char>& buf, bool* close) {
  static constexpr std::string_view kReq = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  if (::send(fd, kReq.data(), kReq.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(kReq.size())) {
    return 0;
  }
  std::string head;
  std::size_t body = 0;
  std::size_t want = 0;
  bool in_body = false;
  while (!in_body || body < want) {
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) return 0;
    if (in_body) {
      body += static_cast<std::size_t>(n);
      continue;
    }
    head.append(buf.data(), static_cast<std::size_t>(n));
    const auto end = head.find("\r\n\r\n");
    if (end == std::string::npos) continue;
    if (head.compare(0, 12, "HTTP/1.1 200") != 0) return 0;
    const auto cl = head.find("Content-Length: ");
    if (cl == std::string::npos || cl > end) return 0;
    want = std::stoul(head.substr(cl + 16));
    const auto conn = head.find("Connection: close");
    *close = conn != std::string::npos && conn < end;
    body = head.size() - end - 4;
    in_body = true;
  }
  return body == want ? body : 0;
}

double process_cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

void raw_scrape_bench(benchmark::State& state, int port) {
  int fd = connect_loopback(port);
  if (fd < 0) {
    state.SkipWithError("connect failed");
    return;
  }
  std::vector<char> buf(256 * 1024);
  std::size_t bytes = 0;
  const double p0 = process_cpu_seconds();
  const double t0 = thread_cpu_seconds();
  for (auto _ : state) {
    bool close = false;
    bytes = raw_scrape(fd, buf, &close);
    if (bytes == 0) {
      state.SkipWithError("GET /metrics failed");
      break;
    }
    if (close) {  // as Prometheus does: a new connection for the next scrape
      ::close(fd);
      fd = connect_loopback(port);
    }
  }
  const double server_cpu = (process_cpu_seconds() - p0) - (thread_cpu_seconds() - t0);
  ::close(fd);
  state.counters["body_bytes"] = static_cast<double>(bytes);
  state.counters["server_cpu_ms"] =
      state.iterations() > 0 ? server_cpu * 1e3 / static_cast<double>(state.iterations()) : 0;
}

void BM_MetricsScrapeRaw(benchmark::State& state) {
  raw_scrape_bench(state, metrics_fixture().port);
}

FormerServer& former_server() {
  static FormerServer former(metrics_fixture());
  return former;
}

void BM_MetricsScrapeRawFormer(benchmark::State& state) {
  raw_scrape_bench(state, former_server().port);
}

void BM_MetricsScrapeFormer(benchmark::State& state) { scrape(state, false, former_server().port); }

void BM_MetricsRender(benchmark::State& state) {
  auto& f = metrics_fixture();
  for (auto _ : state) {
    std::string text = f.model->render();
    benchmark::DoNotOptimize(text.data());
  }
}

void BM_MetricsCollectSerialize(benchmark::State& state) {
  auto& f = metrics_fixture();
  for (auto _ : state) {
    std::string text = prometheus::TextSerializer().Serialize(f.registry.Collect());
    benchmark::DoNotOptimize(text.data());
  }
}

// ---------------------------------------------------------------------------------------------
// The real exporter process.

std::string bin_dir() {
  if (const char* d = std::getenv("TRADING_HEAL_BIN_DIR")) return d;
  return fs::read_symlink("/proc/self/exe").parent_path().string();
}

struct Exporter {
  test::Child child;
  int api_port = 0;
  std::string events_endpoint;
};

std::unique_ptr<Exporter> start_exporter(const fs::path& dir) {
  fs::create_directories(dir / "data");
  std::map<std::string, std::string> env = {{"TRADING_HEAL_RUNTIME_DIR", (dir / "rt").string()},
                                            {"TRADING_HEAL_DATA_DIR", (dir / "data").string()},
                                            {"TRADING_HEAL_METRICS_LISTEN", "127.0.0.1:0"},
                                            {"TRADING_HEAL_API_LISTEN", "127.0.0.1:0"},
                                            {"TRADING_HEAL_AUDIT_MAX_BYTES", "4000000000"},
                                            {"TRADING_HEAL_LOG_LEVEL", "warning"},
                                            {"TRADING_HEAL_AGENTS", "BTC_USDT,ETH_USDT"}};
  auto ex = std::make_unique<Exporter>(
      Exporter{test::Child::spawn({bin_dir() + "/trading-heal-exporter"}, env, true), 0,
               "ipc://" + (dir / "rt" / "events.sock").string()});
  auto line = ex->child.read_line(120s);
  int metrics_port = 0;
  if (!line || std::sscanf(line->c_str(), "listening metrics_port=%d api_port=%d", &metrics_port,
                           &ex->api_port) != 2) {
    return nullptr;
  }
  return ex;
}

// ---------------------------------------------------------------------------------------------
// /audit?symbol=

// kAuditLines events of kAgents symbols round robin (one symbol every 1000 lines), one second
// apart, with a valid hash chain, written as the exporter writes them.
void generate_audit(const fs::path& path) {
  std::ofstream out(path, std::ios::binary);
  std::string prev = exporter::kGenesisHash;
  const char* actions[] = {"diagnosis", "restart", "recovered", "rate_limited"};
  std::string buf;
  for (int i = 0; i < kAuditLines; ++i) {
    proto::Event e;
    const std::string inst = agent_instance(i % kAgents);
    e.agent = inst;
    std::tie(e.symbol, e.profile) = common::symbol_and_profile(inst);
    if (e.profile == "default") e.profile.clear();
    e.action = actions[(i / kAgents) % 4];
    e.success = true;
    e.detail = "generated event " + std::to_string(i) + " for the audit query benchmark";
    e.reason = "decision age above threshold";
    const auto msg = proto::make_message("actuator", "0123456789abcdef0123456789abcdef",
                                         static_cast<std::uint64_t>(i + 1), 1785000000.0 + i, e);
    std::string line = exporter::format_audit_line(msg, prev);
    prev = exporter::sha256_hex(line);
    buf += line;
    buf += '\n';
    if (buf.size() > (1 << 20)) {
      out << buf;
      buf.clear();
    }
  }
  out << buf;
}

struct AuditFixture {
  fs::path dir = temp_root() / "audit";
  std::unique_ptr<Exporter> ex;
  double generate_seconds = 0;
  std::uintmax_t file_bytes = 0;

  AuditFixture() {
    fs::create_directories(dir / "data");
    const fs::path file = dir / "data" / exporter::kAuditFileName;
    const auto t0 = std::chrono::steady_clock::now();
    generate_audit(file);
    generate_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    file_bytes = fs::file_size(file);
    ex = start_exporter(dir);
  }
};

AuditFixture& audit_fixture() {
  static AuditFixture f;
  return f;
}

void audit_query(benchmark::State& state, const std::string& path, std::size_t want) {
  auto& f = audit_fixture();
  if (!f.ex) {
    state.SkipWithError("the exporter did not start");
    return;
  }
  httplib::Client c("127.0.0.1", f.ex->api_port);
  c.set_keep_alive(true);
  c.set_read_timeout(30, 0);
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto r = c.Get(path.c_str());
    if (!r || r->status != 200) {
      state.SkipWithError(("GET " + path + " failed").c_str());
      return;
    }
    bytes = r->body.size();
    benchmark::DoNotOptimize(r->body.data());
  }
  // The answer holds `want` events: count the objects (one "ts" each).
  auto r = c.Get(path.c_str());
  std::size_t events = 0;
  for (std::size_t p = 0; r && (p = r->body.find("{\"ts\":", p)) != std::string::npos; ++p) {
    ++events;
  }
  if (events != want) state.SkipWithError("unexpected number of events in the answer");
  state.counters["events"] = static_cast<double>(events);
  state.counters["body_bytes"] = static_cast<double>(bytes);
  state.counters["file_lines"] = kAuditLines;
  state.counters["file_MB"] = static_cast<double>(f.file_bytes) / 1e6;
  state.counters["generate_s"] = f.generate_seconds;
}

// C7-USDT is on every 1000th line: its newest 1000 events (the default limit) span the whole
// file, so the whole file is read.
void BM_AuditQuery1M_Symbol(benchmark::State& state) {
  audit_query(state, "/audit?symbol=C7-USDT", 1000);
}
// Absent symbol: the whole file is read, nothing matches.
void BM_AuditQuery1M_AbsentSymbol(benchmark::State& state) {
  audit_query(state, "/audit?symbol=NONE-USDT", 0);
}
// limit=100: the newest 100 events of the symbol (the last 100,000 lines).
void BM_AuditQuery1M_SymbolLimit100(benchmark::State& state) {
  audit_query(state, "/audit?symbol=C7-USDT&limit=100", 100);
}

// ---------------------------------------------------------------------------------------------
// Events ingested per second.

void BM_IngestEvents(benchmark::State& state) {
  const int senders = static_cast<int>(state.range(0));
  const int per_sender = static_cast<int>(state.range(1)) / senders;
  std::uint64_t total_events = 0;
  double total_seconds = 0;
  int run = 0;
  for (auto _ : state) {
    const fs::path dir =
        temp_root() / ("ingest-" + std::to_string(senders) + "-" + std::to_string(run++));
    auto ex = start_exporter(dir);
    if (!ex) {
      state.SkipWithError("the exporter did not start");
      return;
    }
    std::atomic<int> failed{0};
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int s = 0; s < senders; ++s) {
      threads.emplace_back([&, s] {
        zmq::context_t ctx;
        common::SystemClock clock;
        auto box =
            common::Outbox::open((dir / ("sender" + std::to_string(s) + ".outbox")).string());
        if (!box) {
          ++failed;
          ++ready;
          return;
        }
        common::Stamper stamper(s % 2 == 0 ? "actuator" : "diagnoser", clock);
        common::ReliableSender sender(ctx, ex->events_endpoint, **box, stamper, 2s, 256);
        ++ready;
        while (!go) std::this_thread::yield();
        int sent = 0;
        const auto deadline = std::chrono::steady_clock::now() + 120s;
        while (std::chrono::steady_clock::now() < deadline) {
          auto now = clock.mono();
          // Records are sent as they are produced, as the daemons do: one send (outbox
          // append + fsync) at a time, reading acknowledgements in between.
          if (sent < per_sender) {
            proto::Event e;
            e.action = sent % 10 == 0 ? "restart" : "diagnosis";
            e.agent = agent_instance(sent % kAgents);
            std::tie(e.symbol, e.profile) = common::symbol_and_profile(e.agent);
            e.detail = "bench event " + std::to_string(sent);
            if (!sender.send(e, now)) {
              ++failed;
              return;
            }
            ++sent;
          }
          zmq::pollitem_t item{sender.socket().handle(), 0, ZMQ_POLLIN, 0};
          zmq::poll(&item, 1, std::chrono::milliseconds(sent < per_sender ? 0 : 20));
          if ((item.revents & ZMQ_POLLIN) != 0) sender.on_readable(clock.mono());
          sender.on_tick(clock.mono());
          if (sent == per_sender && sender.pending() == 0) return;
        }
        ++failed;  // deadline
      });
    }
    while (ready < senders) std::this_thread::yield();
    const auto t0 = std::chrono::steady_clock::now();
    go = true;
    for (auto& t : threads) t.join();
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.SetIterationTime(secs);
    // Every event is in the audit file exactly once.
    std::ifstream in(dir / "data" / exporter::kAuditFileName);
    std::size_t lines = 0;
    for (std::string l; std::getline(in, l);) ++lines;
    ex->child.signal(SIGTERM);
    ex->child.wait(10s);
    if (failed > 0 || lines != static_cast<std::size_t>(senders * per_sender)) {
      state.SkipWithError("not every event was acknowledged and written once");
      return;
    }
    total_events += static_cast<std::uint64_t>(senders * per_sender);
    total_seconds += secs;
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  state.counters["events_per_s"] = static_cast<double>(total_events) / total_seconds;
  state.counters["senders"] = senders;
}

}  // namespace

BENCHMARK(BM_MetricsScrape)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_MetricsScrapeGzip)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_MetricsScrapeRaw)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_MetricsScrapeRawFormer)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_MetricsScrapeFormer)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_MetricsRender)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MetricsCollectSerialize)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AuditQuery1M_Symbol)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_AuditQuery1M_AbsentSymbol)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_AuditQuery1M_SymbolLimit100)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_IngestEvents)
    ->ArgNames({"senders", "events"})
    ->Args({1, 2000})
    ->Args({4, 4000})
    ->Args({16, 8000})
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  Cleanup cleanup;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
