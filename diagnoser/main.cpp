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
#include "trading_heal/common/log.hpp"
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
      "Environment (defaults in parentheses):\n"
      "  OLLAMA_ENABLED (true)  OLLAMA_HOST (http://127.0.0.1:11434)  OLLAMA_MODEL\n"
      "  (qwen2.5-coder:7b)  OLLAMA_TIMEOUT (30)  OLLAMA_API (ollama | openai)\n"
      "  OLLAMA_KEEP_ALIVE (30m)\n"
      "  TRADING_HEAL_AGENTS / TRADING_HEAL_AGENTS_FILE  TRADING_HEAL_SYSTEMD_SCOPE (system)\n"
      "  TRADING_HEAL_DIAGNOSE_AFTER (2)  TRADING_HEAL_DIAGNOSE_WORKERS (2)\n"
      "  TRADING_HEAL_DIAGNOSIS_CACHE_TTL (3600)  TRADING_HEAL_INTERVAL (30)\n"
      "  TRADING_HEAL_RUNTIME_DIR (/run/trading-heal)  TRADING_HEAL_DATA_DIR\n"
      "  (/var/lib/trading-heal)  TRADING_HEAL_LOG_LEVEL (info)\n"
      "  TRADING_HEAL_HEALTH_ENDPOINT  TRADING_HEAL_DIAGNOSER_PUB_ENDPOINT\n"
      "  TRADING_HEAL_DIAGNOSIS_ENDPOINT  TRADING_HEAL_EVENTS_ENDPOINT\n"
      "  TRADING_HEAL_DIAGNOSER_CONTROL_ENDPOINT\n"
      "Exit: 0 on SIGTERM, 78 on a configuration error, 64 on bad usage.\n",
      out);
}

}  // namespace

int main(int argc, char** argv) {
  namespace common = trading_heal::common;
  std::string once;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      usage(stdout);
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
    spdlog::warn("the environment has settings that are not the diagnoser's: {}; move them to the "
                 "daemon's own env file (deploy.sh does)", fmt::join(f, ","));
  }
  // Before any thread or zmq context: the signal mask is inherited, and curl's global init is
  // not thread-safe.
  common::SignalFd signals({SIGTERM, SIGINT, SIGHUP});
  trading_heal::diagnoser::CurlGlobal curl;
  if (!once.empty()) return trading_heal::diagnoser::run_once(*cfg, once, signals);
  return trading_heal::diagnoser::run_daemon(*cfg, signals);
}
