// libFuzzer target: decode() must never crash, throw or leak on any input, and whatever it
// accepts must survive a re-encode/decode round trip unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "trading_heal/proto/codec.hpp"
#include "trading_heal/proto/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace trading_heal::proto;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto msg = decode(in);
  if (!msg) return 0;
  (void)to_json_line(to_json(*msg));
  const std::string again = encode(*msg);
  auto back = decode(again);
  if (!back || encode(*back) != again) std::abort();
  return 0;
}
