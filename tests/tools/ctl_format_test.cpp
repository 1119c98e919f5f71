// trading-heal-ctl's formatting of the exporter's /status and /audit JSON.
#include <gtest/gtest.h>

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
       "incident_state": "RECOVERING", "paused": false, "last_diagnosis": "DB lock ⚠️"},
      {"agent": "ETH_USDT", "symbol": "ETH-USDT", "verdict": null},
      {"agent": "SOL_USDT", "symbol": "SOL-USDT", "verdict": "HEALTHY", "incident_state": "HEALTHY",
       "crash_loop": {"restarts_30m": 5, "last_result": "exit-code"}}
    ]})");
  const std::string plain = format_status(status, false);
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

TEST(CtlFormat, AuditLineCarriesReasonDetailAndDiagnosis) {
  auto e = nlohmann::json::parse(R"json({"ts": "2026-11-28T08:00:00.000Z", "action": "restart",
      "symbol": "BTC-USDT", "success": false, "reason": "stalled (age=1500s)",
      "detail": "job failed", "diagnosis": "DB lock on decisions table"})json");
  const std::string line = format_audit_line(e);
  EXPECT_EQ(line,
            "2026-11-28T08:00:00.000Z  restart             BTC-USDT   FAILED  stalled (age=1500s) "
            "| job failed | diagnosis: DB lock on decisions table");
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
