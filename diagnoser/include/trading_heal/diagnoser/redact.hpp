// Redaction of secrets from log lines before anything leaves the host (LLM prompt, events).
// Pure and thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace trading_heal::diagnoser {

inline constexpr std::string_view kRedacted = "[REDACTED]";

// Replaces, in order: passwords in URLs (scheme://user:PASS@host), bearer/basic/token
// credentials, values of sensitive keys (`password=`, `api_key: "..."`, `'secret': '...'`,
// `PGPASSWORD=`, `passphrase=`, `bot_token=`, `Authorization: ...`), Telegram bot tokens
// (123456789:AA...), and long hex/base64-like tokens. The rest of the line is kept verbatim.
std::string redact(std::string_view line);
std::vector<std::string> redact_lines(const std::vector<std::string>& lines);

// Whether a key name (case-insensitive) names a secret (exposed for the tests).
bool sensitive_key(std::string_view key);

}  // namespace trading_heal::diagnoser
