// Making untrusted text (agents' log lines, LLM answers) inert before it reaches a terminal, a
// log or the audit. Pure and thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace trading_heal::common {

// `in` as valid UTF-8 that no terminal interprets:
//   - invalid UTF-8 bytes become U+FFFD (proto::sanitize_utf8);
//   - tab becomes one space;
//   - every other C0 control (U+0000-U+001F) and DEL become `\xHH` (lower-case hex): ESC [ 2 J
//     prints as `\x1b[2J`, a bell as `\x07`, a carriage return as `\x0d`, a newline as `\x0a`;
//   - the C1 controls U+0080-U+009F become `\u00HH`: the 8-bit CSI prints as `\u009b`.
// Everything else passes unchanged: emoji and non-Latin letters, and also Unicode format
// characters (zero-width joiners inside emoji, bidi overrides), which change how text is shown,
// not what the terminal does. A backslash is not
// escaped, so the result is for display, not a reversible encoding: the text `\x1b` and an
// escaped ESC look the same — both are inert. inert(inert(s)) == inert(s).
// The output can be up to 4 times longer than the input (ESC, 1 byte, becomes `\x1b`). To bound
// its length, cut the input and then call inert(), which turns a character cut in two into
// U+FFFD; cutting the output could split an escape or a character.
std::string inert(std::string_view in);

}  // namespace trading_heal::common
