// Reading the audit files: answering GET /audit across the current and rotated files, and
// verifying the hash chain (--verify-audit). Thread-safe (each call uses its own descriptors).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "trading_heal/exporter/audit_log.hpp"
#include "trading_heal/exporter/audit_query.hpp"

namespace trading_heal::exporter {

// The JSON array answering `q`: the newest `q.limit` matching events, oldest first. Files are
// read backwards from the newest, so a query for recent events touches only the file's tail.
// `scanned`, when given, receives the lines read if the scan stopped at kMaxScanLines before
// the limit was met (0 when it did not: the answer is complete).
std::string query_audit(const std::vector<Fd>& files_newest_first, const AuditQuery& q,
                        std::uint64_t* stopped_after = nullptr,
                        std::uint64_t max_scan = kMaxScanLines);

// Verifies the chain across `paths` given oldest first (e.g. FILE.2 FILE.1 FILE). The first
// file's first line is taken as the anchor unless it carries the genesis hash. Prints one line
// per file and the verdict to `out`; returns 0 when intact, 1 when broken, 2 when unreadable.
int verify_audit_files(const std::vector<std::string>& paths, std::ostream& out);

}  // namespace trading_heal::exporter
