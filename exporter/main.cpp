// trading-heal-exporter: Prometheus metrics, status and audit API, and the durable audit log.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include <prometheus/registry.h>
#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "trading_heal/common/config.hpp"
#include "trading_heal/common/log.hpp"
#include "trading_heal/common/loop.hpp"
#include "trading_heal/common/notify.hpp"
#include "trading_heal/common/peer_guard.hpp"
#include "trading_heal/common/settings.hpp"
#include "trading_heal/common/signals.hpp"
#include "trading_heal/exporter/audit_journal.hpp"
#include "trading_heal/exporter/audit_reader.hpp"
#include "trading_heal/exporter/daemon.hpp"
#include "trading_heal/exporter/http_api.hpp"
#include "trading_heal/exporter/metrics_http.hpp"
#include "trading_heal/exporter/startup.hpp"

namespace {

constexpr const char* kUsage =
    R"(usage: trading-heal-exporter [--help] [--verify-audit [--against-journal] FILE...]

Serves Prometheus metrics (/metrics), the status and audit API (/health /status /audit
/audit/stream) and writes the audit log $TRADING_HEAL_DATA_DIR/trading_heal_audit.jsonl.

  --verify-audit [--against-journal] FILE...
                          check the audit hash chain (rotated files oldest first, e.g.
                          F.2 F.1 F); prints the first broken line; exit 0 intact, 1 broken.
                          --against-journal: also every chain head the exporter recorded in
                          the journal (start, rotation, hourly, stop) back to the rotated-away
                          files must still be a line: a file cut back is found (root or group
                          systemd-journal)

Signals: SIGTERM/SIGINT stop; SIGHUP reopens the audit file (logrotate) and reads the allow-list
of host keys again.
)";

// The HTTP servers hold up to 1024 + 256 connections (HttpServer); systemd's default soft limit
// of open files is 1024. Raised towards the hard limit (nothing in the exporter uses select()).
void raise_open_files_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  const rlim_t want = std::min<rlim_t>(rl.rlim_max, 4096);
  if (rl.rlim_cur >= want) return;
  const rlim_t was = rl.rlim_cur;
  rl.rlim_cur = want;
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    spdlog::warn("open files limit not raised limit={} wanted={}", was, want);
  }
}

}  // namespace

int run_main(int argc, char** argv) {
  using namespace trading_heal;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
    std::cout << kUsage << common::settings_help(common::kExporter);
    return common::kExitOk;
  }
  if (!args.empty() && args[0] == "--verify-audit") {
    if (args.size() < 2) {
      std::cerr << kUsage;
      return common::kExitUsage;
    }
    if (args[1] == "--against-journal") {
      if (args.size() < 3) {
        std::cerr << kUsage;
        return common::kExitUsage;
      }
      return exporter::verify_audit_against_journal({args.begin() + 2, args.end()}, std::cout);
    }
    return exporter::verify_audit_files({args.begin() + 1, args.end()}, std::cout);
  }
  if (!args.empty()) {
    std::cerr << "trading-heal-exporter: unknown argument " << args[0] << "\n" << kUsage;
    return common::kExitUsage;
  }
  auto startup =
      exporter::load_startup(common::process_env(), std::getenv("CREDENTIALS_DIRECTORY"));
  if (!startup) {
    std::cerr << "trading-heal-exporter: configuration error: " << startup.error().to_string()
              << "\n";
    return common::kExitConfig;
  }
  const common::Config* cfg = &startup->cfg;
  const std::string& token = startup->token;
  common::init_logging("exporter", cfg->log_level);
  if (auto f = common::foreign_secrets(common::process_env(), "exporter"); !f.empty()) {
    spdlog::warn(
        "the environment has settings that are not the exporter's: {}; move them to the "
        "daemon's own env file (deploy.sh does)",
        fmt::join(f, ","));
  }
  raise_open_files_limit();
  common::SignalFd signals({SIGTERM, SIGINT, SIGHUP});
  zmq::context_t ctx;
  // The model's families live in this registry; /metrics is rendered by the model itself
  // (MetricsHttp), not collected through prometheus-cpp's Exposer (too slow for 1000 agents).
  prometheus::Registry registry;
  common::SystemClock clock;
  exporter::Daemon daemon(*cfg, ctx, registry, clock, token, std::move(startup->ids));
  exporter::MetricsHttp metrics_http(cfg->metrics_listen,
                                     [&daemon](std::string& out) { daemon.metrics().render(out); });
  const auto metrics_bound = metrics_http.bind();
  if (!metrics_bound) {
    spdlog::critical("cannot listen for metrics listen={} error=\"{}\"", cfg->metrics_listen,
                     metrics_bound.error());
    return common::kExitFailure;
  }
  if (auto r = daemon.start(); !r) {
    spdlog::critical("exporter cannot start error=\"{}\"", r.error());
    daemon.shutdown();
    return common::kExitFailure;
  }
  metrics_http.start();
  common::Loop loop(signals);
  daemon.attach(loop);
  const int metrics_port = *metrics_bound;
  spdlog::info("exporter ready metrics_listen={} metrics_port={} api_listen={} api_port={} auth={}",
               cfg->metrics_listen, metrics_port, cfg->api_listen, daemon.api_port(),
               token.empty() ? "none" : "bearer");
  // For tests and scripts that ask for port 0: the bound ports on stdout, one line.
  std::printf("listening metrics_port=%d api_port=%d\n", metrics_port, daemon.api_port());
  std::fflush(stdout);
  common::notify_ready("serving");
  const int sig = loop.run();
  common::notify_stopping();
  spdlog::info("exporter stopping signal={}", sig);
  metrics_http.stop();
  daemon.shutdown();
  return common::kExitOk;
}

// Whatever escapes is said, not a bare std::terminate.
int main(int argc, char** argv) {
  try {
    return run_main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", "trading-heal-exporter", e.what());
  } catch (...) {
    std::fprintf(stderr, "%s: unknown error\n", "trading-heal-exporter");
  }
  return 1;
}
