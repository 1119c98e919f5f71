// trading-heal-fake-ollama: a stand-in for Ollama with scriptable failures, for tests, the demo and
// benchmarks (no model weights exist on the testbed). Loopback only.
#include <arpa/inet.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <optional>
#include <string>
#include <thread>

#include "fake_state.hpp"
#include "server.hpp"

namespace fo = trading_heal::fake_ollama;

namespace {

constexpr int kExitConfig = 78;  // EX_CONFIG, as every trading-heal program

constexpr const char* kHelp = R"(usage: trading-heal-fake-ollama --listen HOST:PORT [options]

A fake Ollama server speaking Ollama's HTTP API, with scriptable failures. Test fixture only.

  --listen HOST:PORT   loopback address only (127.0.0.0/8, ::1 as [::1]:PORT, localhost);
                       PORT 0 picks a free port. When ready, prints one line on stdout:
                       "listening on HOST:PORT".
  --mode MODE[:SECS]   initial mode (default ok); e.g. slow:5
  --answer JSON        initial answer object (default: DB lock on decisions table)
  --model NAME         also list NAME in /api/tags (repeatable; qwen2.5-coder:7b always is)
  --help               this text

Model endpoints (recorded): POST /api/chat, /api/generate (stream defaults to true: NDJSON),
  POST /v1/chat/completions (stream defaults to false; true gives SSE). Unknown model -> 404
  {"error":"model \"X\" not found, try pulling it first"}.
Other: GET / , /api/tags, /api/version, /v1/models.

Modes: ok | slow (wait SECS, then ok) | http500 | notfound | garbage (prose, no JSON) |
  fenced (```json fences after a sentence) | truncated (JSON cut, done_reason "length") |
  long (2 MiB content, chunked, no Content-Length) | close (headers + half the body, then close)

Control API:
  POST /_fake/mode     {"mode":"slow","seconds":40,"fail_count":0}  fail_count N>0: the next N
                       model requests use the mode, then it reverts to ok
  GET  /_fake/mode     current state
  POST /_fake/answer   the JSON object answered as content in mode ok
  POST /_fake/models   {"models":["llama3:8b"]}  extra models for /api/tags
  GET  /_fake/requests [{"method","path","body" (parsed JSON, or null + "raw"),"time" (epoch s)}]
  POST /_fake/reset    clear records; mode, answer and models back to the command line's

SIGTERM/SIGINT: stop (interrupting slow requests) and exit 0. Bad arguments exit 78.
)";

struct Options {
  std::string host;
  int port = -1;
  fo::Behaviour mode;
  nlohmann::json answer = fo::default_answer();
  std::vector<std::string> models;
};

bool is_loopback(const std::string& host) {
  in_addr v4{};
  in6_addr v6{};
  if (host == "localhost") return true;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  return inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

// Returns an error message, or nothing when `out` is filled.
std::optional<std::string> parse_listen(const std::string& arg, Options& out) {
  const auto colon = arg.rfind(':');
  if (colon == std::string::npos) return "--listen wants HOST:PORT";
  std::string host = arg.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (!is_loopback(host)) return "refusing to listen on non-loopback host '" + host + "'";
  char* end = nullptr;
  const long port = std::strtol(arg.c_str() + colon + 1, &end, 10);
  if (end == arg.c_str() + colon + 1 || *end != '\0' || port < 0 || port > 65535) {
    return "bad port in --listen '" + arg + "'";
  }
  out.host = host == "localhost" ? "127.0.0.1" : host;
  out.port = static_cast<int>(port);
  return std::nullopt;
}

std::optional<std::string> parse_args(int argc, char** argv, Options& out) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kHelp, stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) return "missing value after " + arg;
    const std::string value = argv[++i];
    if (arg == "--listen") {
      if (auto err = parse_listen(value, out)) return err;
    } else if (arg == "--mode") {
      const auto colon = value.find(':');
      const auto mode = fo::parse_mode(value.substr(0, colon));
      if (!mode) return "unknown mode '" + value + "'";
      const double secs = colon == std::string::npos ? 0.0 : std::atof(value.c_str() + colon + 1);
      out.mode = {*mode, std::chrono::milliseconds(static_cast<long long>(secs * 1000.0))};
    } else if (arg == "--answer") {
      out.answer = nlohmann::json::parse(value, nullptr, false);
      if (!out.answer.is_object()) return "--answer must be a JSON object";
    } else if (arg == "--model") {
      out.models.push_back(value);
    } else {
      return "unknown option " + arg;
    }
  }
  if (out.port < 0) return "--listen HOST:PORT is required";
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  if (auto err = parse_args(argc, argv, opt)) {
    std::fprintf(stderr, "fake-ollama: %s (try --help)\n", err->c_str());
    return kExitConfig;
  }
  // Signals are read by this thread with sigtimedwait; every server thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  fo::FakeState state(opt.mode, opt.answer, opt.models);
  httplib::Server server;
  fo::install_routes(server, state);
  const int port = opt.port == 0 ? server.bind_to_any_port(opt.host)
                                 : (server.bind_to_port(opt.host, opt.port) ? opt.port : -1);
  if (port <= 0) {
    std::fprintf(stderr, "fake-ollama: cannot listen on %s:%d\n", opt.host.c_str(), opt.port);
    return 1;
  }
  const bool v6 = opt.host.find(':') != std::string::npos;
  std::printf("listening on %s%s%s:%d\n", v6 ? "[" : "", opt.host.c_str(), v6 ? "]" : "", port);
  std::fflush(stdout);

  auto served = std::async(std::launch::async, [&server] { return server.listen_after_bind(); });
  const timespec tick{0, 100'000'000};
  while (served.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    if (sigtimedwait(&stop_signals, nullptr, &tick) > 0) break;
  }
  state.shutdown();  // wakes slow requests
  server.stop();
  // httplib joins its workers, and an idle keep-alive connection holds one for up to 5 s: we do
  // not make a stopping test fixture wait for that.
  if (served.wait_for(std::chrono::milliseconds(500)) != std::future_status::ready) {
    std::fputs("fake-ollama: stopping with connections still open\n", stderr);
    std::fflush(stderr);
    std::_Exit(0);
  }
  return served.get() || state.shutting_down() ? 0 : 1;
}
