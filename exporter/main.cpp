// trading-heal-exporter: Prometheus metrics, status and audit API, and the durable audit log.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "trading_heal/common/config.hpp"
#include "trading_heal/common/guarded_main.hpp"
#include "trading_heal/common/log.hpp"
#include "trading_heal/common/settings.hpp"
#include "trading_heal/exporter/audit_journal.hpp"
#include "trading_heal/exporter/audit_reader.hpp"
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

// The commands that are not the daemon (--help, --verify-audit); nullopt: run the daemon.
std::optional<int> run_command(const std::vector<std::string>& args) {
  using namespace trading_heal;
  if (args.empty()) return std::nullopt;
  if (args[0] == "--help" || args[0] == "-h") {
    std::cout << kUsage << common::settings_help(common::kExporter);
    return common::kExitOk;
  }
  if (args[0] != "--verify-audit") {
    std::cerr << "trading-heal-exporter: unknown argument " << args[0] << "\n" << kUsage;
    return common::kExitUsage;
  }
  if (args.size() < 2 || (args[1] == "--against-journal" && args.size() < 3)) {
    std::cerr << kUsage;
    return common::kExitUsage;
  }
  if (args[1] == "--against-journal") {
    return exporter::verify_audit_against_journal({args.begin() + 2, args.end()}, std::cout);
  }
  return exporter::verify_audit_files({args.begin() + 1, args.end()}, std::cout);
}

}  // namespace

int run_main(int argc, char** argv) {
  using namespace trading_heal;
  if (auto code = run_command({argv + 1, argv + argc})) return *code;
  auto startup =
      exporter::load_startup(common::process_env(), std::getenv("CREDENTIALS_DIRECTORY"));
  if (!startup) {
    std::cerr << "trading-heal-exporter: configuration error: " << startup.error().to_string()
              << "\n";
    return common::kExitConfig;
  }
  common::init_logging("exporter", startup->cfg.log_level);
  if (auto f = common::foreign_secrets(common::process_env(), "exporter"); !f.empty()) {
    spdlog::warn(
        "the environment has settings that are not the exporter's: {}; move them to the "
        "daemon's own env file (deploy.sh does)",
        fmt::join(f, ","));
  }
  return exporter::serve(*startup);
}

int main(int argc, char** argv) {
  return trading_heal::common::guarded_main("trading-heal-exporter",
                                            [&] { return run_main(argc, argv); });
}
