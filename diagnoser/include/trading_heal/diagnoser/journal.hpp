// Reading a unit's last journal lines with sd-journal (what `journalctl -u UNIT -n N` shows).
// Thread-safe: each call opens its own journal handle.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "trading_heal/common/config.hpp"

namespace trading_heal::diagnoser {

// The journal matches for a unit: groups of FIELD=value terms that must all hold, the groups
// alternatives of one another. Only fields a process cannot choose count (log lines are
// untrusted: `logger -t crypto-agent-X`, or a native message with UNIT=, is anyone's):
// _SYSTEMD_UNIT= / _SYSTEMD_USER_UNIT= (journald's own view of the sender's cgroup), and the
// manager's messages about the unit (UNIT= / USER_UNIT=, e.g. "Failed with result 'oom-kill'")
// only when journald says they come from the manager (_PID=1; a user manager: _COMM=systemd).
// User scope also takes _SYSTEMD_UNIT= (the testbed's user manager runs outside user@.service,
// so its agents' output is attributed as if they were system units).
std::vector<std::vector<std::string>> journal_matches(const std::string& unit,
                                                      common::SystemdScope scope);

// One journal entry as a line: "2026-07-16T15:40:11Z crypto-agent-BTC_USDT[1234]: message".
std::string format_entry(std::uint64_t realtime_usec, const std::string& ident, long pid,
                         const std::string& message);

// Oldest first, at most `n`, each line at most 2000 bytes and valid UTF-8.
tl::expected<std::vector<std::string>, std::string> read_unit_journal(const std::string& unit,
                                                                      common::SystemdScope scope,
                                                                      std::size_t n);

}  // namespace trading_heal::diagnoser
