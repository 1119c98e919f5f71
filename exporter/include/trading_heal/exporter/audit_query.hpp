// GET /audit: parsing and validating the query parameters, and matching audit lines against
// them without a JSON parse (the line format is ours: see audit_format.hpp). Pure; thread-safe.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

namespace trading_heal::exporter {

inline constexpr std::size_t kDefaultAuditLimit = 1000;
inline constexpr std::size_t kMaxAuditLimit = 10000;

// Filters of GET /audit. `since` is inclusive, `until` exclusive; both accept ISO 8601 UTC
// (2026-07-16T15:40:11Z, fractions allowed) or Unix epoch seconds. The answer holds the newest
// `limit` matching events, oldest first.
struct AuditQuery {
  std::optional<std::string> symbol;  // BTC-USDT
  std::optional<std::string> action;  // restart
  std::optional<std::string> agent;   // BTC_USDT
  std::optional<double> since;
  std::optional<double> until;
  std::size_t limit = kDefaultAuditLimit;
  // Derived: the bounds as audit `ts` strings, and the substrings a matching line must hold.
  std::string since_ts;
  std::string until_ts;
  std::vector<std::string> needles;
};

struct ParamError {
  std::string parameter;
  std::string message;  // "limit must be an integer from 1 to 10000"
};

using QueryParams = std::multimap<std::string, std::string>;

// Unknown, repeated, empty or malformed parameters are errors naming the parameter.
tl::expected<AuditQuery, ParamError> parse_audit_query(const QueryParams& params);

bool matches(const AuditQuery& q, std::string_view line);

// Collects matching lines fed newest first, keeping at most `limit`. Not thread-safe.
// How many lines one /audit request reads at most (newest first): a filter that matches nothing
// must not make every request read every rotated file to its start.
inline constexpr std::uint64_t kMaxScanLines = 200000;

class AuditCollector {
 public:
  explicit AuditCollector(const AuditQuery& q, std::uint64_t max_scan = kMaxScanLines)
      : q_(q), max_scan_(max_scan) {}
  // Returns false once `limit` lines are held or `max_scan` lines were read (stop reading).
  bool feed_newest_first(std::string_view line);
  bool full() const { return lines_.size() >= q_.limit || scan_stopped(); }
  // The scan ended at its bound, not at the start of the files or the limit.
  bool scan_stopped() const { return scanned_ >= max_scan_ && lines_.size() < q_.limit; }
  std::uint64_t scanned() const { return scanned_; }
  std::size_t size() const { return lines_.size(); }
  // The JSON array, oldest first (lines are spliced in verbatim).
  std::string json_array() const;

 private:
  const AuditQuery& q_;
  std::uint64_t max_scan_;
  std::uint64_t scanned_ = 0;
  std::vector<std::string> lines_;  // newest first
};

}  // namespace trading_heal::exporter
