// What the actuator's core hands to its shell: restart decisions and audit events, and what the
// shell reports back (the restart's result, a command's answer).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "trading_heal/common/config.hpp"
#include "trading_heal/proto/messages.hpp"

namespace trading_heal::actuator {

// Restart the unit of `agent`. The unit name comes from the configured AgentSpec, never from a
// message.
struct RestartDecision {
  std::string agent;
  std::string unit;
  std::string reason;                    // "stalled (age=1500s)"
  std::optional<std::string> diagnosis;  // the diagnosis' cause, when one came in time
  std::string log_line;       // "SELF-HEAL: restarting BTC-USDT | reason: ... | Ollama: ..."
  bool reset_failed = false;  // the unit is `failed` (e.g. start-limit-hit): reset it first
  std::uint32_t old_pid = 0;  // MainPID in the last report
  std::string incident;
  bool canary = false;
};

// An audit event for the exporter (the shell stamps and sends it reliably).
using Decision = std::variant<RestartDecision, proto::Event>;
using Decisions = std::vector<Decision>;

enum class Outcome { kRestarted, kFailed, kDeferred };
struct RestartResult {
  std::string agent;
  Outcome outcome = Outcome::kRestarted;
  bool dry_run = false;
  std::string detail;  // why it failed / was deferred, or the verification summary
  std::uint32_t old_pid = 0;
  std::uint32_t new_pid = 0;
  double elapsed_seconds = 0;
  bool reset_failed = false;  // a reset-failed was issued before the restart
};

struct CommandResult {
  bool ok = false;
  std::string detail;  // JSON text for status, a message otherwise
  Decisions decisions;
};

// The restart reason for a report: "stalled (age=1500s)", "down (failed/failed)".
std::string reason_for(const proto::HealthReport& r);
// SELF-HEAL: restarting BTC-USDT | reason: stalled (age=1500s) | Ollama: DB lock on decisions table
std::string restart_log_line(const common::AgentSpec& spec, const std::string& reason,
                             const std::optional<std::string>& diagnosis);

}  // namespace trading_heal::actuator
