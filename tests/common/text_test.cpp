// inert(): untrusted text comes out as valid UTF-8 with every control character shown, never
// interpreted, and printable text (emoji, Portuguese) untouched.
#include "trading_heal/common/text.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>

#include "trading_heal/proto/codec.hpp"

namespace trading_heal::common {
namespace {

using namespace std::string_literals;

// No C0 control, DEL or C1 control (as UTF-8) anywhere, and valid UTF-8.
::testing::AssertionResult is_inert(const std::string& s) {
  if (!proto::is_valid_utf8(s)) return ::testing::AssertionFailure() << "invalid UTF-8: " << s;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    const bool c1 = c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) <= 0x9f;
    if (c < 0x20 || c == 0x7f || c1) {
      return ::testing::AssertionFailure()
             << "control byte 0x" << std::hex << int{c} << " at " << std::dec << i << " in " << s;
    }
  }
  return ::testing::AssertionSuccess();
}

TEST(Inert, PrintableTextPassesUnchanged) {
  for (const std::string& s : {
           ""s,
           "2026-07-16 15:40:11,022 | WARNING | ⚠️ Price unavailable (timeout)"s,
           "❌ Loop error: psycopg2.OperationalError: canceling statement due to lock timeout"s,
           "📊 Cycle 1234 | $64,733.10 | No position | PnL: $0.00 | RAG: RANGING (62%)"s,
           "🔌 Conexão recusada: preço indisponível, tentando de novo às 15:40 (ação: esperar)"s,
           "Ошибка соединения · 接続エラー · ¡señal! · non-breaking\u00a0space · ÿ"s,
           "👩‍💻 family 👨‍👩‍👧 flag 🇧🇷 keycap 1️⃣"s,
           R"(C:\path\x1b is text, not an escape; {"json": "\u001b"})"s,
       }) {
    EXPECT_EQ(inert(s), s);
  }
}

TEST(Inert, TerminalAttacksAreShownNotInterpreted) {
  EXPECT_EQ(inert("\x1b[2J\x1b[H"), "\\x1b[2J\\x1b[H");
  EXPECT_EQ(inert("\x1b]52;c;ZXZpbA==\x07"), "\\x1b]52;c;ZXZpbA==\\x07");  // OSC 52 clipboard
  EXPECT_EQ(inert("\x1b]0;pwned\x1b\\"), "\\x1b]0;pwned\\x1b\\");          // title, ST ending
  EXPECT_EQ(inert("ok\rFAKE LINE"), "ok\\x0dFAKE LINE");
  EXPECT_EQ(inert("one\ntwo\r\n"), "one\\x0atwo\\x0d\\x0a");
  EXPECT_EQ(inert("beep\x07"), "beep\\x07");
  EXPECT_EQ(inert("del\x7f\x7f"), "del\\x7f\\x7f");
  EXPECT_EQ(inert("\xc2\x9b"
                  "2J"),
            "\\u009b2J");  // 8-bit CSI, U+009B
  EXPECT_EQ(inert("\xc2\x9d"
                  "52;c;x\xc2\x9c"),
            "\\u009d52;c;x\\u009c");  // 8-bit OSC ... ST
  EXPECT_EQ(inert("a\tb"), "a b");
  EXPECT_EQ(inert("nul\0byte"s), "nul\\x00byte");
  EXPECT_EQ(inert("⚠️ \x1b[31mDB lock\x1b[0m ❌"), "⚠️ \\x1b[31mDB lock\\x1b[0m ❌");
}

TEST(Inert, EveryControlIsEscaped) {
  for (int c = 0; c < 0x20; ++c) {
    if (c == '\t') continue;
    char want[8];
    std::snprintf(want, sizeof want, "\\x%02x", c);
    EXPECT_EQ(inert(std::string(1, static_cast<char>(c))), want) << c;
  }
  for (int c = 0x80; c <= 0x9f; ++c) {
    const std::string utf8{'\xc2', static_cast<char>(c)};
    char want[8];
    std::snprintf(want, sizeof want, "\\u%04x", c);
    EXPECT_EQ(inert(utf8), want) << c;
  }
  EXPECT_EQ(inert("\xc2\xa0"), "\xc2\xa0");  // U+00A0, the first code point past C1
}

TEST(Inert, InvalidUtf8BecomesReplacementCharacter) {
  EXPECT_EQ(inert("\x9b"
                  "2J"),
            "\xef\xbf\xbd"
            "2J");  // a bare 8-bit CSI byte is not UTF-8
  EXPECT_EQ(inert("a\xff"
                  "b"),
            "a\xef\xbf\xbd"
            "b");
  EXPECT_EQ(inert("\xc0\x9b"), "\xef\xbf\xbd\xef\xbf\xbd");        // overlong ESC-like form
  EXPECT_EQ(inert("pre\xe2\x9a"), "pre\xef\xbf\xbd\xef\xbf\xbd");  // ⚠ cut in two
  EXPECT_TRUE(is_inert(inert("\xed\xa0\x80\x1b")));                // a surrogate, then ESC
}

TEST(Inert, AnyBytesComeOutInertAndStable) {
  std::mt19937 rng(20261128);  // fixed seed: the same cases every run
  for (int n = 0; n < 2000; ++n) {
    std::string s(rng() % 40, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 256);
    if (n % 2 == 0) s = "\xc2\x9b" + s + "\xc2";  // a C1 first and a cut sequence last
    const std::string out = inert(s);
    ASSERT_TRUE(is_inert(out));
    ASSERT_EQ(inert(out), out);  // idempotent: already inert text is left as it is
    ASSERT_LE(out.size(), 4 * s.size());
  }
}

}  // namespace
}  // namespace trading_heal::common
