// The audit head in the journal (audit_heads.hpp): writing it (the daemon) and reading it back
// (--verify-audit --against-journal, run as root or a member of systemd-journal).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "trading_heal/exporter/audit_heads.hpp"

namespace trading_heal::exporter {

// Sends one journal entry: MESSAGE, TRADING_HEAL_AUDIT_HEAD=hash, TRADING_HEAL_AUDIT_FILE=the
// canonical path, TRADING_HEAL_AUDIT_EVENT=event. False when the journal cannot be reached.
bool record_audit_head(const std::string& path, const std::string& hash, const std::string& event);

// The heads recorded for the audit file `path` (canonical), newest first.
tl::expected<std::vector<RecordedHead>, std::string> read_recorded_heads(const std::string& path);

// verify_audit_files(paths), then every head recorded for the newest of `paths` back to the
// rotated-away history must be a line of the files. Prints the verdict; 0 intact, 1 broken or
// cut back (or no head recorded at all), 2 unreadable.
int verify_audit_against_journal(const std::vector<std::string>& paths, std::ostream& out);

}  // namespace trading_heal::exporter
