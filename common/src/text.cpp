#include "trading_heal/common/text.hpp"

#include <algorithm>

#include "trading_heal/proto/codec.hpp"

namespace trading_heal::common {
namespace {

bool plain_ascii(unsigned char c) { return c >= 0x20 && c < 0x7f; }

void append_escape(std::string& out, const char* prefix, unsigned char value) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.append(prefix);
  out.push_back(kHex[value >> 4]);
  out.push_back(kHex[value & 0x0f]);
}

}  // namespace

std::string inert(std::string_view in) {
  // Nearly every log line is printable ASCII: no copy through sanitize_utf8, no scan.
  const auto is_plain = [](char c) { return plain_ascii(static_cast<unsigned char>(c)); };
  if (std::all_of(in.begin(), in.end(), is_plain)) return std::string(in);
  const std::string valid = proto::sanitize_utf8(in);
  std::string out;
  out.reserve(valid.size() + valid.size() / 4);
  for (std::size_t i = 0; i < valid.size(); ++i) {
    const auto c = static_cast<unsigned char>(valid[i]);
    if (c == '\t') {
      out.push_back(' ');
    } else if (c < 0x20 || c == 0x7f) {
      append_escape(out, "\\x", c);
    } else if (c == 0xc2 && i + 1 < valid.size() &&
               static_cast<unsigned char>(valid[i + 1]) <= 0x9f) {
      // In valid UTF-8, C2 followed by 80-9F is exactly U+0080-U+009F; the second byte is the
      // code point.
      append_escape(out, "\\u00", static_cast<unsigned char>(valid[++i]));
    } else {
      out.push_back(valid[i]);
    }
  }
  return out;
}

}  // namespace trading_heal::common
