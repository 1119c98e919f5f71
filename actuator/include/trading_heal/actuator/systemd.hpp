// Talking to systemd about one unit: its state, restart, reset-failed. Two backends: D-Bus
// (sd-bus, authorised by polkit in production) and systemctl (argv, never a shell).
// Blocking: used from the restart worker thread only. Not thread-safe: one per thread.
// The D-Bus connection heals itself (common/bus.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
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

  // While the worker waits for work: the fd to poll (-1: none), and what to do when it is
  // readable or the returned delay has passed (nullopt: only when the fd is readable). The D-Bus
  // backend processes its connection here, so that it notices a loss and reconnects before the
  // next restart needs it.
  virtual int idle_fd() const { return -1; }
  virtual std::optional<std::chrono::milliseconds> idle() { return std::nullopt; }
  // Connections to the bus found lost since the start (0 for backends without one).
  virtual std::uint64_t connection_losses() const { return 0; }
};

// sd-bus RestartUnit(name, "replace"), waiting for the JobRemoved signal of our job. Connects
// at once (a failure is logged, and each call tries again), reconnects after a loss.
std::unique_ptr<UnitManager> make_dbus_manager(common::SystemdScope scope);
// posix_spawn of `systemctl [--user] restart UNIT` (a user manager, or a root actuator).
std::unique_ptr<UnitManager> make_systemctl_manager(common::SystemdScope scope);

// The argv the systemctl backend runs for `verb` (exposed for tests): never a shell.
std::vector<std::string> systemctl_argv(common::SystemdScope scope, const std::string& verb,
                                        const std::string& unit);
// Parses `systemctl show -p ActiveState,SubState,Result,MainPID` output.
UnitStatus parse_show(const std::string& text);

}  // namespace trading_heal::actuator
