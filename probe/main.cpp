// trading-heal-probe: every interval, the three checks for every agent; one HealthReport per
// agent on the `health` PUB, instant reports on unit changes, config_mismatch audit events.
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>

#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "trading_heal/common/log.hpp"
#include "trading_heal/common/loop.hpp"
#include "trading_heal/common/notify.hpp"
#include "trading_heal/common/peer_guard.hpp"
#include "trading_heal/common/reliable.hpp"
#include "trading_heal/common/settings.hpp"
#include "trading_heal/common/signals.hpp"
#include "trading_heal/probe/daemon.hpp"
#include "trading_heal/probe/runtime.hpp"
#include "trading_heal/proto/json.hpp"

namespace {

namespace common = trading_heal::common;
namespace probe = trading_heal::probe;

constexpr const char* kUsage = R"(usage: trading-heal-probe [--once] [--help]
Checks every configured crypto-agent@ unit each interval (systemd over D-Bus, its process in
/proc, the age of its newest row in btc.decisions, with the heartbeat file as fallback) and
publishes one HealthReport per agent on the health endpoint.

  --once   one cycle; reports as JSON lines on stdout; exit 0 if all HEALTHY, 1 otherwise
  --help   this text

Exit status: 0 stopped by SIGTERM, 78 configuration error, 1 other failure.
)";

int run_once(const common::Config& cfg, const probe::ProbeOptions& opts) {
  probe::Runtime rt(cfg, opts);
  common::SystemClock clock;
  common::Stamper stamper("probe", clock);
  const auto reports = rt.run_once(clock);
  bool all_healthy = !reports.empty();
  for (const auto& r : reports) {
    std::cout << trading_heal::proto::to_json_line(trading_heal::proto::to_json(stamper.stamp(r)))
              << '\n';
    all_healthy = all_healthy && r.verdict == trading_heal::proto::Verdict::kHealthy;
  }
  std::cout.flush();
  return all_healthy ? 0 : 1;
}

int run_daemon(const common::Config& cfg, const probe::ProbeOptions& opts) {
  auto ids = common::resolve_identities(cfg);
  if (!ids) {
    spdlog::critical("configuration error: {}", ids.error().to_string());
    return common::kExitConfig;
  }
  common::SignalFd signals({SIGTERM, SIGINT, SIGHUP});
  zmq::context_t ctx(1);
  common::SystemClock clock;
  auto daemon = probe::Daemon::start(cfg, opts, *ids, ctx, clock);
  if (!daemon) {
    spdlog::critical("{}", daemon.error().message);
    return daemon.error().exit_code;
  }
  common::Loop loop(signals);
  (*daemon)->attach(loop);
  common::notify_ready("probing " + std::to_string(cfg.agents.size()) + " agents");
  spdlog::info("probe started agents={} interval_s={} scope={} health={}", cfg.agents.size(),
               std::chrono::duration<double>(cfg.interval).count(), common::to_string(cfg.scope),
               cfg.endpoints.health);
  const int sig = loop.run();
  common::notify_stopping();
  spdlog::info("probe stopping signal={} cycles={}", sig, (*daemon)->runtime().cycles());
  return common::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  // One malloc arena: the PostgreSQL worker thread would otherwise get its own, and keep its
  // high-water mark resident (RSS goal: 15 MiB at 1000 agents).
  ::mallopt(M_ARENA_MAX, 1);
  bool once = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs((kUsage + common::settings_help(common::kProbe)).c_str(), stdout);
      return common::kExitOk;
    }
    if (a == "--once") {
      once = true;
    } else {
      std::fprintf(stderr, "trading-heal-probe: unknown argument %s\n%s", a.c_str(), kUsage);
      return common::kExitUsage;
    }
  }
  auto cfg = common::load_config(common::process_env());
  if (!cfg) {
    std::fprintf(stderr, "trading-heal-probe: configuration error: %s\n",
                 cfg.error().to_string().c_str());
    return common::kExitConfig;
  }
  const probe::ProbeOptions opts = probe::probe_options(*cfg);
  common::init_logging("probe", cfg->log_level);
  if (auto f = common::foreign_secrets(common::process_env(), "probe"); !f.empty()) {
    spdlog::warn(
        "the environment has settings that are not the probe's: {}; move them to the "
        "daemon's own env file (deploy.sh does)",
        fmt::join(f, ","));
  }
  try {
    return once ? run_once(*cfg, opts) : run_daemon(*cfg, opts);
  } catch (const std::exception& e) {
    spdlog::critical("probe failed error={}", e.what());
    return common::kExitFailure;
  }
}
