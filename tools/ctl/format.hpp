// Pure formatting for trading-heal-ctl: the fleet table and audit lines from the exporter's JSON.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace trading_heal::ctl {

// The fleet as a table (one agent a line). `colour` adds ANSI colours to the verdict.
std::string format_status(const nlohmann::json& status, bool colour);
// One audit event as one line: time, action, symbol, outcome, reason / detail, diagnosis.
std::string format_audit_line(const nlohmann::json& event);
// "90s" -> 90, "15m" -> 900, "2h" -> 7200, "1d" -> 86400; -1 when not a duration.
double parse_duration_seconds(const std::string& text);

}  // namespace trading_heal::ctl
