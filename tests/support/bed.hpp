// Access to the running testbed (tests/bed/bed.sh) from integration tests.
#pragma once

#include <map>
#include <string>

namespace trading_heal::test {

// The testbed writes `KEY=VALUE` lines to $TRADING_HEAL_BED_DIR/env (XDG_RUNTIME_DIR,
// DBUS_SESSION_BUS_ADDRESS, DATABASE_URL, ...). Not thread-safe; tests use it from one thread.
class Bed {
 public:
  static std::string dir();                         // $TRADING_HEAL_BED_DIR
  static std::string bin(const std::string& name);  // $TRADING_HEAL_BIN_DIR/name
  static std::string source_dir();                  // $TRADING_HEAL_SOURCE_DIR
  static const std::map<std::string, std::string>& env();
  static std::string get(const std::string& key);  // env().at(key), fails the test if absent
  // Exports the bed's variables into this process (for sd-bus user scope, libpq, ...).
  static void export_env();
  // Runs `cmd` under bash with the bed's environment; returns the exit status.
  static int sh(const std::string& cmd);
  // Same, returning stdout (trailing newline stripped); `status` receives the exit status.
  static std::string sh_out(const std::string& cmd, int* status = nullptr);
};

}  // namespace trading_heal::test
