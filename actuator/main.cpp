// trading-heal-actuator: the only process that restarts anything. See actuator/README in
// SPEC.md "Restart" and ARCHITECTURE.md "The actuator's incident".
#include <signal.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <zmq.hpp>

#include "trading_heal/actuator/daemon.hpp"
#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "trading_heal/common/config.hpp"
#include "trading_heal/common/log.hpp"
#include "trading_heal/common/signals.hpp"

namespace {

constexpr const char* kUsage = R"(usage: trading-heal-actuator [--help]

Restarts crypto-agent@<instance>.service units of the configured agents when the probe reports
them DOWN or STALLED, within limits (SPEC.md "Restart"). Configuration from the environment:

  TRADING_HEAL_AGENTS / TRADING_HEAL_AGENTS_FILE   the agents (the only units it may restart)
  TRADING_HEAL_SYSTEMD_SCOPE=system|user           which systemd manager
  TRADING_HEAL_RESTART_BACKEND=dbus|systemctl      TRADING_HEAL_RESTART_SUDO=false
  TRADING_HEAL_RESTART_TIMEOUT=30                  restart job and verification, seconds each
  TRADING_HEAL_INTERVAL  TRADING_HEAL_CONSECUTIVE_THRESHOLD  TRADING_HEAL_EXHAUSTED_AFTER
  TRADING_HEAL_MAX_RESTARTS  TRADING_HEAL_FLEET_MAX_RESTARTS  TRADING_HEAL_COOLDOWN
  TRADING_HEAL_BACKOFF_MAX  TRADING_HEAL_STABLE_AFTER  TRADING_HEAL_RECOVERY_GRACE
  TRADING_HEAL_DIAGNOSIS_WAIT (default OLLAMA_TIMEOUT + 5)
  TRADING_HEAL_GLOBAL_MIN_AGENTS  TRADING_HEAL_GLOBAL_WINDOW
  TRADING_HEAL_PRE_RESTART_HOOK  TRADING_HEAL_POST_RESTART_HOOK  TRADING_HEAL_HOOK_TIMEOUT
  TRADING_HEAL_DRY_RUN=false  TRADING_HEAL_DATA_DIR  TRADING_HEAL_RUNTIME_DIR
  TRADING_HEAL_HEALTH_ENDPOINT  TRADING_HEAL_DIAGNOSIS_ENDPOINT  TRADING_HEAL_CONTROL_ENDPOINT
  TRADING_HEAL_ACTUATOR_PUB_ENDPOINT  TRADING_HEAL_EVENTS_ENDPOINT  TRADING_HEAL_LOG_LEVEL

State: $TRADING_HEAL_DATA_DIR/actuator-state.json; audit outbox: actuator-events.outbox.
Exit codes: 0 on SIGTERM, 78 on a configuration error, 1 on other failures.
)";

}  // namespace

int main(int argc, char** argv) {
  namespace common = trading_heal::common;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::fputs(kUsage, stdout);
      return common::kExitOk;
    }
    std::fprintf(stderr, "trading-heal-actuator: unknown argument %s\n%s", argv[i], kUsage);
    return common::kExitUsage;
  }
  auto cfg = common::load_config(common::process_env());
  trading_heal::actuator::DaemonOptions opts;
  if (!cfg) {
    std::fprintf(stderr, "trading-heal-actuator: configuration error: %s\n",
                 cfg.error().to_string().c_str());
    return common::kExitConfig;
  }
  opts.restart_timeout = cfg->restart_timeout;
  common::init_logging("actuator", cfg->log_level);
  if (auto f = common::foreign_secrets(common::process_env(), "actuator"); !f.empty()) {
    spdlog::warn("the environment has settings that are not the actuator's: {}; move them to the "
                 "daemon's own env file (deploy.sh does)", fmt::join(f, ","));
  }
  common::SignalFd signals({SIGTERM, SIGINT, SIGHUP});  // before the zmq context and threads
  zmq::context_t ctx(1);
  const int rc = trading_heal::actuator::run_daemon(*cfg, opts, ctx, signals);
  return rc;
}
