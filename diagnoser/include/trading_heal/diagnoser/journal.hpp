// Reading a unit's last journal lines with sd-journal (what `journalctl -u UNIT -n N` shows).
// Thread-safe: each call opens its own journal handle.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "trading_heal/common/config.hpp"

namespace trading_heal::diagnoser {

// The journal matches for a unit, as FIELD=value strings, alternatives of one another.
// System scope: _SYSTEMD_UNIT= (the unit's own output) and UNIT= (systemd's messages about
// it, e.g. "Failed with result 'oom-kill'"). User scope: _SYSTEMD_USER_UNIT=, USER_UNIT= and
// _SYSTEMD_UNIT= (verified on the testbed: its user manager runs outside user@.service, so the
// agents' output carries _SYSTEMD_UNIT=crypto-agent@X.service and the manager's USER_UNIT=).
// Both: SYSLOG_IDENTIFIER=crypto-agent-<instance> (the agents' unit sets it), which also finds
// the lines where the journal cannot attribute a cgroup (e.g. cgroup v1, no user slice).
std::vector<std::string> journal_matches(const std::string& unit, common::SystemdScope scope);

// One journal entry as a line: "2026-07-16T15:40:11Z crypto-agent-BTC_USDT[1234]: message".
std::string format_entry(std::uint64_t realtime_usec, const std::string& ident, long pid,
                         const std::string& message);

// Oldest first, at most `n`, each line at most 2000 bytes and valid UTF-8.
tl::expected<std::vector<std::string>, std::string> read_unit_journal(
    const std::string& unit, common::SystemdScope scope, std::size_t n);

}  // namespace trading_heal::diagnoser
