// trading-heal-diagnoser: on an agent's second consecutive failure (or a diagnose command),
// reads its journal, redacts secrets, classifies by rules, asks the LLM, and delivers a
// validated Diagnosis to the actuator and events to the exporter. The LLM never blocks anyone.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "trading_heal/common/config.hpp"
#include "trading_heal/common/guarded_main.hpp"
#include "trading_heal/common/log.hpp"
#include "trading_heal/common/loop.hpp"
#include "trading_heal/common/notify.hpp"
#include "trading_heal/common/peer_guard.hpp"
#include "trading_heal/common/settings.hpp"
#include "trading_heal/common/signals.hpp"
#include "trading_heal/diagnoser/daemon.hpp"
#include "trading_heal/diagnoser/ollama_client.hpp"

namespace {

void usage(std::FILE* out) {
  std::fputs(
      "usage: trading-heal-diagnoser [--once AGENT] [--help]\n"
      "\n"
      "Diagnoses failing trading agents: journal (last 50 lines) -> redaction -> rules -> LLM.\n"
      "  --once AGENT   diagnose AGENT (an instance, e.g. BTC_USDT) now and print the Diagnosis\n"
      "                 as one JSON line on stdout\n"
      "  --help         this text\n"
      "\n"
      "Exit: 0 on SIGTERM, 78 on a configuration error, 64 on bad usage.\n",
      out);
}

}  // namespace

int run_main(int argc, char** argv) {
  namespace common = trading_heal::common;
  std::string once;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      std::fputs(common::settings_help(common::kDiagnoser).c_str(), stdout);
      return common::kExitOk;
    }
    if (std::strcmp(argv[i], "--once") == 0 && i + 1 < argc) {
      once = argv[++i];
    } else {
      usage(stderr);
      return common::kExitUsage;
    }
  }
  auto cfg = common::load_config(common::process_env());
  if (!cfg) {
    std::fprintf(stderr, "trading-heal-diagnoser: configuration error: %s\n",
                 cfg.error().to_string().c_str());
    return common::kExitConfig;
  }
  common::init_logging("diagnoser", cfg->log_level);
  if (auto f = common::foreign_secrets(common::process_env(), "diagnoser"); !f.empty()) {
    spdlog::warn(
        "the environment has settings that are not the diagnoser's: {}; move them to the "
        "daemon's own env file (deploy.sh does)",
        fmt::join(f, ","));
  }
  // Before any thread or zmq context: the signal mask is inherited, and curl's global init is
  // not thread-safe.
  common::SignalFd signals({SIGTERM, SIGINT, SIGHUP});
  trading_heal::diagnoser::CurlGlobal curl;
  if (!once.empty()) return trading_heal::diagnoser::run_once(*cfg, once, signals);
  auto ids = common::resolve_identities(*cfg);
  if (!ids) {
    spdlog::critical("configuration error: {}", ids.error().to_string());
    return common::kExitConfig;
  }
  zmq::context_t ctx;
  common::SystemClock clock;
  auto daemon = trading_heal::diagnoser::Daemon::start(*cfg, std::move(*ids), ctx, clock);
  if (!daemon) {
    spdlog::error("startup failed: {}", daemon.error());
    return common::kExitFailure;
  }
  common::Loop loop(signals);
  (*daemon)->attach(loop);
  common::notify_ready("diagnosing");
  spdlog::info("ready agents={} workers={} llm={} model={} api={} timeout_ms={}",
               cfg->agents.size(), cfg->diagnose_workers, cfg->ollama.enabled ? "on" : "off",
               cfg->ollama.model, cfg->ollama.api == common::LlmApi::kOpenAi ? "openai" : "ollama",
               cfg->ollama.timeout.count());
  const int sig = loop.run();
  common::notify_stopping();
  spdlog::info("stopping signal={}", sig);
  (*daemon)->stop();
  return common::kExitOk;
}

int main(int argc, char** argv) {
  return trading_heal::common::guarded_main("trading-heal-diagnoser",
                                            [&] { return run_main(argc, argv); });
}
