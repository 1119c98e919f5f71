// trading-heal-ctl's formatting of the exporter's /status and /audit JSON.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "format.hpp"

namespace trading_heal::ctl {
namespace {

TEST(CtlFormat, StatusTableShowsEveryAgentAndComponent) {
  auto status = nlohmann::json::parse(R"({
    "global_incident": true,
    "components": {"probe": {"up": true}, "diagnoser": {"up": false}},
    "agents": [
      {"agent": "BTC_USDT", "symbol": "BTC-USDT", "verdict": "STALLED",
       "decision_age_seconds": 1500.0, "consecutive_failures": 3, "restarts_hour": 1,
       "stall_threshold_seconds": 45.0, "threshold_source": "learned",
       "incident_state": "RECOVERING", "paused": false, "last_diagnosis": "DB lock ⚠️"},
      {"agent": "ETH_USDT", "symbol": "ETH-USDT", "verdict": null},
      {"agent": "SOL_USDT", "symbol": "SOL-USDT", "verdict": "HEALTHY", "incident_state": "HEALTHY",
       "stall_threshold_seconds": 600, "threshold_source": "fixed",
       "crash_loop": {"restarts_30m": 5, "last_result": "exit-code"}}
    ]})");
  const std::string plain = format_status(status, false);
  EXPECT_NE(plain.find("THRESHOLD"), std::string::npos) << plain;
  EXPECT_NE(plain.find("45s learned"), std::string::npos) << plain;
  EXPECT_NE(plain.find("10m "), std::string::npos) << plain;
  EXPECT_EQ(plain.find("10m learned"), std::string::npos) << plain;
  EXPECT_NE(plain.find("BTC_USDT"), std::string::npos);
  EXPECT_NE(plain.find("STALLED"), std::string::npos);
  EXPECT_NE(plain.find("25m"), std::string::npos);
  EXPECT_NE(plain.find("RECOVERING"), std::string::npos);
  EXPECT_NE(plain.find("DB lock ⚠️"), std::string::npos);
  EXPECT_NE(plain.find("ETH_USDT"), std::string::npos);
  EXPECT_NE(plain.find("GLOBAL INCIDENT"), std::string::npos);
  EXPECT_NE(plain.find("CRASHLOOP:5"), std::string::npos) << plain;
  EXPECT_NE(plain.find("diagnoser=SILENT"), std::string::npos);
  EXPECT_EQ(plain.find("\033["), std::string::npos);
  EXPECT_NE(format_status(status, true).find("\033[33mSTALLED"), std::string::npos);
}

// Many hosts: each row names its host (a row without one is the answering host's), and the
// hosts the centre hears from, or no longer does, are listed.
TEST(CtlFormat, StatusTableNamesEachAgentsHostAndTheSilentHosts) {
  auto status = nlohmann::json::parse(R"({
    "host": "centre",
    "hosts": {"alpha": {"up": true}, "beta": {"up": false}, "centre": {"up": true}},
    "agents": [
      {"agent": "BTC_USDT", "host": "alpha", "symbol": "BTC-USDT", "verdict": "HEALTHY"},
      {"agent": "BTC_USDT", "host": "beta", "symbol": "BTC-USDT", "verdict": "UNKNOWN"},
      {"agent": "ETH_USDT", "symbol": "ETH-USDT", "verdict": "HEALTHY"}
    ]})");
  const std::string plain = format_status(status, false);
  EXPECT_EQ(plain.rfind("HOST", 0), 0u) << plain;
  EXPECT_NE(plain.find("\nalpha         BTC_USDT"), std::string::npos) << plain;
  EXPECT_NE(plain.find("\nbeta          BTC_USDT"), std::string::npos) << plain;
  EXPECT_NE(plain.find("\ncentre        ETH_USDT"), std::string::npos) << plain;
  EXPECT_NE(plain.find("hosts: alpha=up beta=SILENT centre=up"), std::string::npos) << plain;
  EXPECT_EQ(plain.find("FLEET"), std::string::npos) << "no fleet incident, no line";
  status["fleet"] = nlohmann::json::parse(R"({"incident": "fleet-1", "stage": "canary_testing",
      "hold": true, "reason": "alpha is the canary host, the others hold"})");
  EXPECT_NE(format_status(status, false)
                .find("FLEET fleet-1 canary_testing: hosts held | alpha is the canary host, "
                      "the others hold\n"),
            std::string::npos)
      << format_status(status, false);
}

TEST(CtlFormat, AuditLineCarriesReasonDetailAndDiagnosis) {
  auto e = nlohmann::json::parse(R"json({"ts": "2026-11-28T08:00:00.000Z", "action": "restart",
      "symbol": "BTC-USDT", "success": false, "reason": "stalled (age=1500s)",
      "detail": "job failed", "diagnosis": "DB lock on decisions table"})json");
  const std::string line = format_audit_line(e);
  EXPECT_EQ(line,
            "2026-11-28T08:00:00.000Z  restart             BTC-USDT   FAILED  stalled (age=1500s) "
            "| job failed | diagnosis: DB lock on decisions table");
}

// Agents' log lines and the LLM's answers reach /status and /audit: an attacker who can make
// an agent log a line must not be able to clear the operator's screen, write the clipboard
// (OSC 52), ring the bell, overwrite the line (CR) or send an 8-bit CSI (U+009B).
const std::string kHostile =
    "\x1b[2J\x1b]52;c;ZXZpbA==\x07\r\xc2\x9b"
    "31m";
const std::string kShown = "\\x1b[2J\\x1b]52;c;ZXZpbA==\\x07\\x0d\\u009b31m";

::testing::AssertionResult no_control_bytes(const std::string& s, bool colour = false) {
  std::string rest = s;
  if (colour) {
    // The tool's own colours are the only escapes allowed.
    for (const char* sgr : {"\033[31m", "\033[32m", "\033[33m", "\033[90m", "\033[0m"}) {
      for (auto p = rest.find(sgr); p != std::string::npos; p = rest.find(sgr)) {
        rest.erase(p, std::string(sgr).size());
      }
    }
  }
  for (std::size_t i = 0; i < rest.size(); ++i) {
    const auto c = static_cast<unsigned char>(rest[i]);
    const bool c1 =
        c == 0xc2 && i + 1 < rest.size() && static_cast<unsigned char>(rest[i + 1]) <= 0x9f;
    if ((c < 0x20 && c != '\n') || c == 0x7f || c1) {
      return ::testing::AssertionFailure() << "byte " << int{c} << " at " << i << ": " << s;
    }
  }
  return ::testing::AssertionSuccess();
}

TEST(CtlFormat, AuditLineShowsControlCharactersInsteadOfSendingThem) {
  nlohmann::json e = {{"ts", "2026-11-28T08:00:00.000Z" + kHostile},
                      {"action", "diagnosis\x07"},
                      {"symbol", "BTC-USDT\r"},
                      {"success", true},
                      {"reason", "db_lock\x7f"},
                      {"detail", "Matched log line: ⚠️ " + kHostile + " ❌ preço"},
                      {"diagnosis", "DB lock " + kHostile}};
  const std::string line = format_audit_line(e);
  EXPECT_TRUE(no_control_bytes(line));
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  EXPECT_NE(line.find("Matched log line: ⚠️ " + kShown + " ❌ preço"), std::string::npos)
      << line;
  EXPECT_NE(line.find("diagnosis: DB lock " + kShown), std::string::npos) << line;
  EXPECT_NE(line.find("diagnosis\\x07"), std::string::npos) << line;
  EXPECT_NE(line.find("BTC-USDT\\x0d"), std::string::npos) << line;
  EXPECT_NE(line.find("db_lock\\x7f"), std::string::npos) << line;

  // A field that is not a string is printed as JSON: its strings are made inert too.
  e["detail"] = {{"note",
                  "\xc2\x9b"
                  "2J\x7f"}};
  const std::string nested = format_audit_line(e);
  EXPECT_TRUE(no_control_bytes(nested));
  EXPECT_NE(nested.find("\\u009b2J\\x7f"), std::string::npos) << nested;
}

TEST(CtlFormat, StatusTableShowsControlCharactersInsteadOfSendingThem) {
  nlohmann::json status = {{"global_incident", true},
                           {"components", {{"probe\x1b[8m", {{"up", true}}}}},
                           {"agents",
                            {{{"agent", "BTC_USDT"},
                              {"symbol", "BTC-USDT\x1b[1A"},
                              {"verdict", "STALLED"},
                              {"incident_state", "DIAGNOSING\r"},
                              {"last_diagnosis", "Python crash: " + kHostile}},
                             {{"agent", "ETH_USDT"}, {"verdict", "HEALTHY\x1b[0m"}}}}};
  for (bool colour : {false, true}) {
    const std::string table = format_status(status, colour);
    EXPECT_TRUE(no_control_bytes(table, colour));
    EXPECT_NE(table.find("Python crash: " + kShown), std::string::npos) << table;
    EXPECT_NE(table.find("BTC-USDT\\x1b[1A"), std::string::npos) << table;
    EXPECT_NE(table.find("DIAGNOSING\\x0d"), std::string::npos) << table;
    EXPECT_NE(table.find("probe\\x1b[8m=up"), std::string::npos) << table;
    EXPECT_NE(table.find("HEALTHY\\x1b[0m"), std::string::npos) << table;
    // One line a row: header, two agents, the incident banner, the components.
    EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 5) << table;
  }
  // The colours the tool adds itself still work.
  const std::string coloured = format_status(status, true);
  EXPECT_NE(coloured.find("\033[33mSTALLED"), std::string::npos);
  EXPECT_NE(coloured.find("\033[31mGLOBAL INCIDENT"), std::string::npos);
  EXPECT_NE(coloured.find("\033[90mHEALTHY\\x1b[0m"), std::string::npos) << coloured;
}

TEST(CtlFormat, Durations) {
  EXPECT_EQ(parse_duration_seconds("90"), 90);
  EXPECT_EQ(parse_duration_seconds("90s"), 90);
  EXPECT_EQ(parse_duration_seconds("30m"), 1800);
  EXPECT_EQ(parse_duration_seconds("2h"), 7200);
  EXPECT_EQ(parse_duration_seconds("1d"), 86400);
  EXPECT_EQ(parse_duration_seconds("soon"), -1);
  EXPECT_EQ(parse_duration_seconds("-5m"), -1);
  EXPECT_EQ(parse_duration_seconds("5y"), -1);
}

}  // namespace
}  // namespace trading_heal::ctl
