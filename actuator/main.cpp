// trading-heal-actuator: the only process that restarts anything. See actuator/README in
// docs/operations.md and the README's "Architecture"; the incident machine:
// actuator/src/core/engine.cpp.
#include <signal.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <zmq.hpp>

#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>
#include "trading_heal/actuator/daemon.hpp"

#include "trading_heal/common/config.hpp"
#include "trading_heal/common/guarded_main.hpp"
#include "trading_heal/common/log.hpp"
#include "trading_heal/common/settings.hpp"
#include "trading_heal/common/signals.hpp"

namespace {

constexpr const char* kUsage = R"(usage: trading-heal-actuator [--help]

Restarts crypto-agent@<instance>.service units of the configured agents when the probe reports
them DOWN or STALLED, within limits (docs/operations.md). Configuration: the environment below.

State: $TRADING_HEAL_DATA_DIR/actuator-state.json; audit outbox: actuator-events.outbox.
Exit codes: 0 on SIGTERM, 78 on a configuration error, 1 on other failures.
)";

}  // namespace

int run_main(int argc, char** argv) {
  namespace common = trading_heal::common;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::fputs((kUsage + common::settings_help(common::kActuator)).c_str(), stdout);
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
    spdlog::warn(
        "the environment has settings that are not the actuator's: {}; move them to the "
        "daemon's own env file (deploy.sh does)",
        fmt::join(f, ","));
  }
  common::SignalFd signals({SIGTERM, SIGINT, SIGHUP});  // before the zmq context and threads
  zmq::context_t ctx(1);
  const int rc = trading_heal::actuator::run_daemon(*cfg, opts, ctx, signals);
  return rc;
}

int main(int argc, char** argv) {
  return trading_heal::common::guarded_main("trading-heal-actuator",
                                            [&] { return run_main(argc, argv); });
}
