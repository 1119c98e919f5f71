// The exporter's shell (startup.hpp): the metrics server and the Daemon on one loop.
#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <cstdio>

#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include "trading_heal/common/loop.hpp"
#include "trading_heal/common/notify.hpp"
#include "trading_heal/common/signals.hpp"
#include "trading_heal/exporter/daemon.hpp"
#include "trading_heal/exporter/metrics_http.hpp"
#include "trading_heal/exporter/startup.hpp"

namespace trading_heal::exporter {
namespace {

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

int serve(Startup& startup) {
  const common::Config& cfg = startup.cfg;
  const std::string& token = startup.token;
  raise_open_files_limit();
  common::SignalFd signals({SIGTERM, SIGINT, SIGHUP});
  zmq::context_t ctx;
  // The model's families live in this registry; /metrics is rendered by the model itself
  // (MetricsHttp), not collected through prometheus-cpp's Exposer (too slow for 1000 agents).
  prometheus::Registry registry;
  common::SystemClock clock;
  Daemon daemon(cfg, ctx, registry, clock, token, std::move(startup.ids));
  MetricsHttp metrics_http(cfg.metrics_listen,
                           [&daemon](std::string& out) { daemon.metrics().render(out); });
  const auto metrics_bound = metrics_http.bind();
  if (!metrics_bound) {
    spdlog::critical("cannot listen for metrics listen={} error=\"{}\"", cfg.metrics_listen,
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
               cfg.metrics_listen, metrics_port, cfg.api_listen, daemon.api_port(),
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

}  // namespace trading_heal::exporter
