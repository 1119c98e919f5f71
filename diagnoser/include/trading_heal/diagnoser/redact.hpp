// Redaction of secrets from log lines before anything leaves the host (LLM prompt, events).
// Pure and thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace trading_heal::diagnoser {

inline constexpr std::string_view kRedacted = "[REDACTED]";

// Replaces, in order:
//   - passwords in URLs, scheme://user:PASS@host. PASS may hold / ? # , @ and quotes
//     (postgresql://u:p/a?s#s,w@host/db, mysql://u:"p@ss"@h): it runs to the last '@' followed
//     by a host before the next blank (or the next "://"; in a quoted URL, first looked for
//     before the closing quote); a quoted PASS ("p w"@h) may hold blanks;
//   - bearer/basic/token credentials;
//   - values of sensitive keys (`password=`, `api_key: "..."`, `'secret': '...'`,
//     `PGPASSWORD=`, `passphrase=`, `bot_token=`, `Authorization: ...`). A quoted value ends at
//     its closing quote. An unquoted value ends at the next field (`key=`, `key: `, `"key":`
//     after a blank or one of , ; &), at the " | " between the agents' log fields, or at the end
//     of the line; for keys that name a password, passphrase or secret it may hold blanks
//     (`password=correct horse battery staple`), for other keys (tokens, API keys) and in
//     environment assignments (`PGPASSWORD=x psql`: upper-case key, '=') it also ends at a
//     blank. Brackets and quotes left unbalanced at its end are kept (`Config(password=x)`);
//   - Telegram bot tokens (123456789:AA...);
//   - long random-looking tokens: hex of 24+ characters, 32+ token characters mixing letters
//     and digits, and standard base64 with '/' (32+ characters, upper and lower case and
//     digits, at most one '/' in 16, not starting with '/').
// The rest of the line is kept verbatim.
// Limits. Too much is redacted when: prose follows a password without a field in between
// (`password=x rejected by server` loses "rejected by server"); an '@' follows a URL password
// in its path or query (the host goes too), or a URL has a port and an '@' further on
// (`https://host:443/x?email=a@b.c` reads as user `host`, password `443/x?email=a`). A secret
// stays (partly) visible when: a passphrase has a word of its own followed by '=' or ': '
// (cut there), or has blanks in an environment assignment (`PASSWORD=a b`: the shell would
// need quotes too); a URL password has unquoted blanks; a bare base64 secret starts with '/'
// (only its pieces that look random on their own go).
std::string redact(std::string_view line);
std::vector<std::string> redact_lines(const std::vector<std::string>& lines);

// Whether a key name (case-insensitive) names a secret (exposed for the tests).
bool sensitive_key(std::string_view key);

}  // namespace trading_heal::diagnoser
