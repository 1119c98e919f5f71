// Talking to systemd about one unit: its state, restart, reset-failed. Two backends: D-Bus
// (sd-bus, authorised by polkit in production) and systemctl (argv, optionally behind sudo -n).
// Blocking: used from the restart worker thread only. Not thread-safe: one per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <tl/expected.hpp>

#include "trading_heal/common/config.hpp"

namespace trading_heal::actuator {

struct UnitStatus {
  std::string active_state;
  std::string sub_state;
  std::string result;
  std::uint32_t main_pid = 0;
};

class UnitManager {
 public:
  virtual ~UnitManager() = default;
  virtual tl::expected<UnitStatus, std::string> status(const std::string& unit) = 0;
  // Returns when systemd finished the restart job (or the timeout passed).
  virtual tl::expected<void, std::string> restart(const std::string& unit,
                                                  std::chrono::milliseconds timeout) = 0;
  virtual tl::expected<void, std::string> reset_failed(const std::string& unit) = 0;
  virtual std::string name() const = 0;
};

// sd-bus RestartUnit(name, "replace"), waiting for the JobRemoved signal of our job.
tl::expected<std::unique_ptr<UnitManager>, std::string> make_dbus_manager(common::SystemdScope scope);
// posix_spawn of `[sudo -n] systemctl [--user] restart UNIT`.
std::unique_ptr<UnitManager> make_systemctl_manager(common::SystemdScope scope, bool sudo);

// The argv the systemctl backend runs for `verb` (exposed for tests): never a shell.
std::vector<std::string> systemctl_argv(common::SystemdScope scope, bool sudo,
                                        const std::string& verb, const std::string& unit);
// Parses `systemctl show -p ActiveState,SubState,Result,MainPID` output.
UnitStatus parse_show(const std::string& text);

}  // namespace trading_heal::actuator
