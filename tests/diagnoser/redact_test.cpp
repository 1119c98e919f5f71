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
            "access_token=[REDACTED]&scope=x"},
        // URL passwords with / ? # , @ or quotes: up to the last '@' that a host follows.
        Row{"postgresql://u:p/a?s#s,w@host/db", "p/a?s#s,w", "postgresql://u:[REDACTED]@host/db"},
        Row{R"(mysql://u:"p@ss"@h)", "p@ss", "mysql://u:[REDACTED]@h"},
        Row{"redis://:p@ss/w0rd@cache:6379/0", "ss/w0rd", "redis://:[REDACTED]@cache:6379/0"},
        Row{"amqp://bot:s/e#c,r?t@[::1]:5672/vhost", "s/e#c,r?t",
            "amqp://bot:[REDACTED]@[::1]:5672/vhost"},
        Row{R"(DATABASE_URL='mysql://app:"pa ss,wo/rd"@db.internal:3306/trading' loaded)", "pa ss",
            "DATABASE_URL='mysql://app:[REDACTED]@db.internal:3306/trading' loaded"},
        Row{R"({"dsn":"postgresql://trader:S3cr#t/p?w@127.0.0.1:5432/x","to":"ops@example.com"})",
            "S3cr#t",
            R"({"dsn":"postgresql://trader:[REDACTED]@127.0.0.1:5432/x","to":"ops@example.com"})"},
        Row{"🔌 Reconnecting to postgresql://trader:a'b\"c@127.0.0.1:5432/trading (attempt 2/5)",
            "a'b",
            "🔌 Reconnecting to postgresql://trader:[REDACTED]@127.0.0.1:5432/trading "
            "(attempt 2/5)"},
        // Unquoted values with blanks: a password, passphrase or secret runs to the next field
        // (`key=`, `key: `), the " | " between log fields, or the end of the line.
        Row{"password=correct horse battery staple", "horse battery staple", "password=[REDACTED]"},
        Row{"connect host=db user=app password=correct horse battery staple dbname=trading "
            "sslmode=require",
            "battery",
            "connect host=db user=app password=[REDACTED] dbname=trading sslmode=require"},
        Row{"2026-07-16 15:43:00,500 | ERROR | ❌ login failed passphrase=my kucoin pass 2026 | "
            "retrying in 5s",
            "kucoin pass",
            "2026-07-16 15:43:00,500 | ERROR | ❌ login failed passphrase=[REDACTED] | retrying in "
            "5s"},
        Row{"Config(exchange=kucoin, api_secret=s3 cr3t w0rd, sandbox=False)", "cr3t",
            "Config(exchange=kucoin, api_secret=[REDACTED], sandbox=False)"},
        Row{"Server=db;Database=trading;Uid=app;Pwd=p@ss w0rd;", "w0rd",
            "Server=db;Database=trading;Uid=app;Pwd=[REDACTED];"},
        Row{"PGPASSWORD=a,b;c psql -h db", "a,b;c", "PGPASSWORD=[REDACTED] psql -h db"},
        Row{"Config(password=hunter2 two)", "hunter2", "Config(password=[REDACTED])"},
        Row{"api_key=AbCdEf123 rejected by exchange", "AbCdEf123",
            "api_key=[REDACTED] rejected by exchange"},
        // base64 with '/': after a sensitive key, and bare (32+ characters, mixed case and digits).
        Row{"api_secret=AbC/dEf+gH1/jKlmNoPq==", "AbC/dEf", "api_secret=[REDACTED]"},
        Row{"KuCoin client: api_secret=AbC/dEf+gH1/jKlmNoPq== passphrase=x", "jKlmNoPq",
            "KuCoin client: api_secret=[REDACTED] passphrase=[REDACTED]"},
        Row{"signing with FtyKA+wf59JWFxGzMCR5+y/xG3wZ/sseGILQ5Jwa now", "xG3wZ",
            "signing with [REDACTED] now"},
        Row{"{'sig': 'E2NbzmB3K6A3LFImbQjht/nYwEMGneVyO0ef9yyGzg=='}", "nYwEMG",
            "{'sig': '[REDACTED]'}"}));

TEST(Redact, LeavesOrdinaryLinesAlone) {
  const std::vector<std::string> lines = {
      "2026-07-16 15:40:11,022 | WARNING | ⚠️ Price unavailable (timeout)",
      "❌ Loop error: psycopg2.OperationalError: canceling statement due to lock timeout",
      "📊 Cycle 1234 | $64,733.10 | No position | PnL: $0.00 | RAG: RANGING (62%)",
      "  File \"/opt/crypto-agent/trading_agent.py\", line 812, in <module>",
      "KeyError: 'close'",
      "Failed with result 'oom-kill'.",
      "🤖 Agent initialized: BTC-USDT (dry_run=True, profile=default, "
      "config=config_BTC_USDT.json)",
      "the token is invalid",
      "connecting to postgresql://trader@127.0.0.1:5432/trading",
      // URLs without a password, paths, and the agents' ordinary lines with slashes.
      "connecting to postgresql://127.0.0.1:5432/trading?sslmode=disable&application_name=agent",
      "GET https://api.kucoin.com/api/v1/market/orderbook/level1?symbol=BTC-USDT 200 (0.183s)",
      "llm request url=http://127.0.0.1:11434/api/chat model=qwen2.5-coder:7b status=200",
      "alerts to ops@example.com via smtp://mail.example.com:587, cc risk@example.com",
      "  File \"/usr/lib/python3/dist-packages/psycopg2/extensions.py\", line 12, in <module>",
      "🧠 Model loaded from /opt/crypto-agent/models/BTC_USDT/lstm_v3.keras (val_loss=0.0123)",
      "GET /api/v1/accounts/5f3a9Bc0d1E2/orders/Hx7Kp2Lm9QwErTyU/fills 200",
      "weights: /home/Trader2/CryptoAgent/ModelsV3/BTCUSDT/Final2026",
      "src/Strategies/MeanReversion2/BollingerBands/V3/config",
      "📍 BUY signal @ $64,733.10 | confidence: 0.82 | reason: breakout 2/3 confirmations",
      "🔌 Conexão recusada: preço indisponível (tentativa 3/5), aguardando 10s",
      "⚠️ Sinal ignorado: preço fora da faixa (ação=esperar, motivo=volatilidade alta)",
      "psycopg2.OperationalError: FATAL:  password authentication failed for user \"trader\"",
      "ValueError: could not convert string to float: 'N/A'",
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
