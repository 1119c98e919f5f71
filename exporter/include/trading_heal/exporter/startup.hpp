// What the exporter needs before it opens anything: its settings, the API's bearer token and the
// peers' identities, each refused by name when wrong (exit 78 in main).
#pragma once

#include <string>

#include <tl/expected.hpp>

#include "trading_heal/common/config.hpp"
#include "trading_heal/common/peer_guard.hpp"

namespace trading_heal::exporter {

struct Startup {
  common::Config cfg;
  std::string token;  // empty: no bearer token (the API on loopback, or anonymous on purpose)
  common::Identities ids;
};

// The token comes from the unit's credential (`credentials_dir`/api-token, systemd's
// LoadCredential: the exporter's user reads only its private copy) when there is one, else from
// TRADING_HEAL_API_TOKEN_FILE; an API reachable from other hosts without a token is refused
// unless TRADING_HEAL_API_ALLOW_ANONYMOUS says so. `credentials_dir` may be null or empty.
tl::expected<Startup, common::ConfigError> load_startup(const common::EnvLookup& env,
                                                        const char* credentials_dir);

// The daemon: binds the metrics server and the API, serves until SIGTERM/SIGINT (SIGHUP: see
// Daemon::attach), then stops both. Returns the process's exit status.
int serve(Startup& startup);

// The token file's one word, trimmed; an unreadable, empty or spaced file is an error.
tl::expected<std::string, std::string> read_token_file(const std::string& path);

}  // namespace trading_heal::exporter
