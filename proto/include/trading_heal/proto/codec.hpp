// Encoding and strictly bounded decoding of messages. decode() is the only place msgpack is
// unpacked in trading-heal. Thread-safe: no shared state.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include "trading_heal/proto/messages.hpp"

namespace trading_heal::proto {

// Why a message was rejected. The names are the `reason` label of
// trading_selfheal_messages_rejected_total: keep them stable.
enum class Reject {
  kOversized,      // more bytes than Limits::max_bytes
  kMalformed,      // not msgpack, truncated, or trailing bytes
  kLimitExceeded,  // a declared array/map/str/bin/ext length or nesting depth over the limits
  kNotAMap,        // envelope or body is not a map
  kBadVersion,     // protocol version we do not speak
  kUnknownKind,
  kMissingField,
  kWrongType,
  kBadValue,  // right type, unacceptable value (enum, range, NaN, invalid UTF-8)
};
inline constexpr std::size_t kRejectCount = 9;
std::string_view to_string(Reject r);

struct DecodeError {
  Reject reason;
  std::string detail;  // e.g. "field body.verdict: unknown value \"SLEEPY\""
};

struct Limits {
  std::size_t max_bytes = 256 * std::size_t{1024};
  std::size_t max_array = 64;
  std::size_t max_map = 64;
  std::size_t max_str = 64 * std::size_t{1024};
  std::size_t max_bin = 0;    // no binary fields exist
  std::size_t max_ext = 0;    // no extension types exist
  std::size_t max_depth = 4;  // envelope > body > fields > scalar
};

std::string encode(const Message& msg);
tl::expected<Message, DecodeError> decode(std::string_view bytes, const Limits& limits = {});

// Counts rejections by reason. Not thread-safe: one per receiving thread.
class RejectCounter {
 public:
  void add(Reject r) { ++counts_.at(static_cast<std::size_t>(r)); }
  std::uint64_t count(Reject r) const { return counts_.at(static_cast<std::size_t>(r)); }
  std::uint64_t total() const;

 private:
  std::array<std::uint64_t, kRejectCount> counts_{};
};

// Replaces invalid UTF-8 sequences with U+FFFD so untrusted text (journal lines, LLM answers)
// can be put into a message, which decode() would otherwise reject.
std::string sanitize_utf8(std::string_view in);
bool is_valid_utf8(std::string_view in);

}  // namespace trading_heal::proto
