// The audit chain's head, recorded outside the file: the exporter writes the hash of its last
// committed line to the journal at start, before each rotation, every hour and at stop
// (TRADING_HEAL_AUDIT_HEAD=, with the file's path in TRADING_HEAL_AUDIT_FILE=). A file cut back
// after a head was recorded no longer holds that line: `--verify-audit --against-journal` finds
// it. Pure (the journal is read by the caller).
#pragma once

#include <string>
#include <unordered_set>
#include <vector>

namespace trading_heal::exporter {

struct RecordedHead {
  std::string hash;   // TRADING_HEAL_AUDIT_HEAD
  std::string event;  // start | rotate | hourly | stop
  std::string when;   // the entry's time, for messages
  std::string unit;   // _SYSTEMD_UNIT or _SYSTEMD_USER_UNIT: set by journald, not by the sender
};

struct HeadCheck {
  int checked = 0;               // heads found among the lines
  int ignored = 0;               // entries not from an exporter unit (anyone may log these fields)
  bool reached_rotated = false;  // stopped at the head that ends the rotated-away history
  std::vector<RecordedHead> missing;  // recorded heads the files do not hold, newest first
  bool ok() const { return missing.empty(); }
};

// `newest_first`: the recorded heads of one audit file; `line_hashes`: the SHA-256 of every line
// of the files verified (oldest file first ... the current one); `rotated_boundary`: the
// prev_hash of the oldest file's first line (the genesis hash for a log's first file). Heads are
// checked from the newest back to the one equal to the boundary: older ones belong to files
// rotated away (or not given). An entry whose unit is not a trading-heal-exporter@ unit is
// ignored: the trusted field says who logged it.
HeadCheck check_recorded_heads(const std::vector<RecordedHead>& newest_first,
                               const std::unordered_set<std::string>& line_hashes,
                               const std::string& rotated_boundary);

}  // namespace trading_heal::exporter
