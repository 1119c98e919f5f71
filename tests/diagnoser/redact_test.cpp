#include "trading_heal/diagnoser/redact.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace trading_heal::diagnoser {
namespace {

struct Row {
  std::string in;
  std::string secret;    // must be gone
  std::string expected;  // exact output, when not empty
};

class RedactTable : public ::testing::TestWithParam<Row> {};

TEST_P(RedactTable, SecretIsGone) {
  const Row& r = GetParam();
  const std::string out = redact(r.in);
  EXPECT_EQ(out.find(r.secret), std::string::npos) << out;
  EXPECT_NE(out.find(kRedacted), std::string::npos) << out;
  if (!r.expected.empty()) {
    EXPECT_EQ(out, r.expected);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Lines, RedactTable,
    ::testing::Values(
        Row{"🔌 Reconnecting to postgresql://trader:S3cretPassw0rd@127.0.0.1:5432/trading",
            "S3cretPassw0rd",
            "🔌 Reconnecting to postgresql://trader:[REDACTED]@127.0.0.1:5432/trading"},
        Row{"redis://:hunter2hunter@localhost:6379/0", "hunter2hunter",
            "redis://:[REDACTED]@localhost:6379/0"},
        Row{"connect host=db user=app password=Sup3r-secret dbname=x", "Sup3r-secret",
            "connect host=db user=app password=[REDACTED] dbname=x"},
        Row{"PGPASSWORD=abc123xyz psql", "abc123xyz", "PGPASSWORD=[REDACTED] psql"},
        Row{"KuCoin client: KUCOIN_API_KEY=64f1c0ffee5eed00ba5eba11 "
            "api_secret=9b2e7d4c-5a1f-4e3b-8c6d-0f1a2b3c4d5e passphrase=Tr4d3rPassphr4se",
            "Tr4d3rPassphr4se",
            "KuCoin client: KUCOIN_API_KEY=[REDACTED] api_secret=[REDACTED] "
            "passphrase=[REDACTED]"},
        Row{"api_secret=9b2e7d4c-5a1f-4e3b-8c6d-0f1a2b3c4d5e", "9b2e7d4c", ""},
        Row{"KUCOIN_API_KEY=64f1c0ffee5eed00ba5eba11", "64f1c0ffee", ""},
        Row{"config: {'api_key': 'AbCdEf123', 'symbol': 'BTC-USDT'}", "AbCdEf123",
            "config: {'api_key': '[REDACTED]', 'symbol': 'BTC-USDT'}"},
        Row{R"(payload {"password": "p@ss word", "user": "bob"})", "p@ss word",
            R"(payload {"password": "[REDACTED]", "user": "bob"})"},
        Row{"⚠️ HTTP 401 from exchange, request headers: {'Authorization': 'Bearer "
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0cmFkZXIifQ.ZmFrZS1zaWduYXR1cmU'}",
            "eyJhbGciOiJIUzI1NiJ9", ""},
        Row{"curl -H 'Authorization: Bearer abcdefghijklmnop'", "abcdefghijklmnop", ""},
        Row{"Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA", ""},
        Row{"❌ Telegram notify failed: bot_token=123456789:AAHfakeTelegramTokenForTests_012345",
            "AAHfakeTelegramToken", "❌ Telegram notify failed: bot_token=[REDACTED]"},
        Row{"POST https://api.telegram.org/bot123456789:AAHfakeTelegramTokenForTests_012345/"
            "sendMessage",
            "AAHfakeTelegramToken", ""},
        Row{"sending 123456789:AAHfakeTelegramTokenForTests_012345 now", "AAHfake",
            "sending [REDACTED] now"},
        Row{"session 0123456789abcdef0123456789abcdef expired", "0123456789abcdef",
            "session [REDACTED] expired"},
        Row{"sig=QmFzZTY0U2lnbmF0dXJlVGhhdElzTG9uZzEyMzQ1Njc4OTA= ok", "QmFzZTY0U2ln", ""},
        Row{"EXCHANGE_SECRET: 'k9!x'", "k9!x", "EXCHANGE_SECRET: '[REDACTED]'"},
        Row{"access_token=ya29.a0AfH6SMB&scope=x", "ya29.a0AfH6SMB",
            "access_token=[REDACTED]&scope=x"}));

TEST(Redact, LeavesOrdinaryLinesAlone) {
  const std::vector<std::string> lines = {
      "2026-07-16 15:40:11,022 | WARNING | ⚠️ Price unavailable (timeout)",
      "❌ Loop error: psycopg2.OperationalError: canceling statement due to lock timeout",
      "📊 Cycle 1234 | $64,733.10 | No position | PnL: $0.00 | RAG: RANGING (62%)",
      "  File \"/opt/crypto-agent/trading_agent.py\", line 812, in <module>",
      "KeyError: 'close'",
      "Failed with result 'oom-kill'.",
      "🤖 Agent initialized: BTC-USDT (dry_run=True, profile=default, config=config_BTC_USDT.json)",
      "the token is invalid",
      "connecting to postgresql://trader@127.0.0.1:5432/trading",
  };
  for (const auto& l : lines) EXPECT_EQ(redact(l), l);
}

TEST(Redact, SensitiveKeys) {
  for (const char* k : {"password", "PGPASSWORD", "db_passwd", "api_secret", "passphrase",
                        "bot_token", "KUCOIN_API_KEY", "apiKey", "api-key", "Authorization",
                        "private_key", "pwd", "secret_access_key"}) {
    EXPECT_TRUE(sensitive_key(k)) << k;
  }
  for (const char* k : {"KeyError", "user", "host", "symbol", "monkey", "error", "keyboard"}) {
    EXPECT_FALSE(sensitive_key(k)) << k;
  }
}

}  // namespace
}  // namespace trading_heal::diagnoser
