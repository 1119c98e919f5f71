// sd_notify: readiness, watchdog pings and status for Type=notify units. No-ops when the
// process is not run by systemd (NOTIFY_SOCKET unset).
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace trading_heal::common {

void notify_ready(const std::string& status = {});
void notify_stopping();
void notify_watchdog();
void notify_status(const std::string& status);
// How often to ping: half of WatchdogSec, or nullopt when no watchdog is configured.
std::optional<std::chrono::microseconds> watchdog_ping_interval();

}  // namespace trading_heal::common
