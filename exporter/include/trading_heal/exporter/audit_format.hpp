// The audit line format (one JSON object a line) and its hash chain: building a line from an
// Event, reading the few fields the query and the recovery need without a full parse, and the
// chain verifier. Pure functions over strings; thread-safe.
//
// A line, keys in this order (flattened event fields sit between `diagnosis` and `source`; a
// field whose name is one of the fixed keys is written as `field_<name>`):
//   {"ts":"2026-07-16T15:40:11.022Z","action":"restart","symbol":"BTC-USDT","agent":"BTC_USDT",
//    "host":"alpha",["profile":"conservative",]"success":true,"detail":"...","reason":"...",["diagnosis":"...",]
//    ...fields...,"source":"actuator","boot_id":"...","seq":12,"prev_hash":"<64 hex>"}
// `ts` is the sender's wall clock (envelope ts) in UTC with milliseconds. `prev_hash` is the
// SHA-256 (hex) of the previous line's bytes without its newline; the very first line of a log
// carries 64 zeros. The chain continues across rotated files. `host` is the host the record came
// from as the exporter knows it (the name bound to the sender's key; this host for local
// senders), never what the record says; a field named `host` is written as `field_host`.
//
// Changing the format? Change together: format_audit_line, line_ts/line_identity (they rely on
// `ts` first and `source`,`boot_id`,`seq`,`prev_hash` last, written without spaces), the query
// prefilter (audit_query.cpp), the tests in tests/exporter/audit_format_test.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "trading_heal/proto/messages.hpp"

namespace trading_heal::exporter {

inline const std::string kGenesisHash(64, '0');

// 2026-07-16T15:40:11.022Z (milliseconds, always UTC).
std::string iso8601_utc(double epoch_seconds);
// Accepts YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+00:00). nullopt when malformed.
std::optional<double> parse_iso8601_utc(std::string_view s);

// One audit line for an Event message (no trailing newline). Precondition: msg holds an Event.
// `host` empty: no host key (lines written before hosts existed had none).
std::string format_audit_line(const proto::Message& msg, const std::string& prev_hash,
                              const std::string& host = {});

// The `ts` value of a line written by format_audit_line (empty view when absent).
std::string_view line_ts(std::string_view line);

struct LineIdentity {
  std::string source;
  std::string boot_id;
  std::uint64_t seq = 0;
  std::string host;  // empty for a line without one
};
// (source, boot_id, seq, host) of a line; falls back to a full JSON parse when the fast path
// fails.
std::optional<LineIdentity> line_identity(std::string_view line);

// Verifies a chain line by line. Not thread-safe.
class ChainVerifier {
 public:
  // `expected_first`: the prev_hash the first line must carry (genesis for a log's first file);
  // nullopt accepts any (a rotated file checked on its own: its first line is the anchor).
  explicit ChainVerifier(std::optional<std::string> expected_first = std::nullopt)
      : expected_(std::move(expected_first)) {}
  // Feeds the next line (without newline). Returns false at the first break.
  bool feed(std::string_view line);
  std::uint64_t lines() const { return lines_; }
  const std::string& last_hash() const { return last_hash_; }
  bool broken() const { return !error_.empty(); }
  std::uint64_t broken_line() const { return broken_line_; }  // 1-based, 0 when intact
  const std::string& error() const { return error_; }

 private:
  std::optional<std::string> expected_;
  std::uint64_t lines_ = 0;
  std::string last_hash_;
  std::uint64_t broken_line_ = 0;
  std::string error_;
};

}  // namespace trading_heal::exporter
