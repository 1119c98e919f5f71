#include "trading_heal/diagnoser/answer.hpp"

#include <gtest/gtest.h>

#include <string>

namespace trading_heal::diagnoser {
namespace {

constexpr std::size_t kCap = 64 * 1024;
const std::string kGood =
    R"({"cause":"DB lock on decisions table","severity":"high","action":"auto-restart","explanation":"Lock timeouts."})";

struct Row {
  std::string name;
  std::string text;
  std::string reason;  // empty: must parse
};

class AnswerTable : public ::testing::TestWithParam<Row> {};

TEST_P(AnswerTable, ParsesOrExplains) {
  const Row& r = GetParam();
  const auto a = parse_answer(r.text, kCap);
  if (r.reason.empty()) {
    ASSERT_TRUE(a.has_value()) << a.error().reason << ": " << a.error().detail;
    EXPECT_EQ(a->cause, "DB lock on decisions table");
    EXPECT_EQ(a->severity, proto::Severity::kHigh);
    EXPECT_EQ(a->action, proto::DiagnosisAction::kAutoRestart);
  } else {
    ASSERT_FALSE(a.has_value()) << "parsed: " << a->cause;
    EXPECT_EQ(a.error().reason, r.reason) << a.error().detail;
    EXPECT_FALSE(a.error().detail.empty());
  }
}

INSTANTIATE_TEST_SUITE_P(
    Answers, AnswerTable,
    ::testing::Values(
        Row{"plain", kGood, ""},
        Row{"fenced", "Here is my analysis:\n```json\n" + kGood + "\n```\nHope it helps.", ""},
        Row{"fence_no_lang", "```\n" + kGood + "\n```", ""},
        Row{"leading_text", "Sure! The answer is " + kGood, ""},
        Row{"trailing_text", kGood + "\nLet me know if you need more.", ""},
        Row{"unclosed_fence", "```json\n" + kGood, ""},
        Row{"whitespace", "\n\n   " + kGood + "   \n", ""},
        Row{"truncated", R"({"cause":"DB lock on decisions table","severity":"hi)", "parse"},
        Row{"garbage", "The agent seems unhappy. Try turning it off and on again.", "parse"},
        Row{"empty", "", "parse"}, Row{"array", R"([{"cause":"x"}])", "schema"},
        Row{"wrong_severity",
            R"({"cause":"x","severity":"urgent","action":"auto-restart","explanation":"e"})",
            "schema"},
        Row{"wrong_action",
            R"({"cause":"x","severity":"high","action":"restart sshd.service","explanation":"e"})",
            "schema"},
        Row{"action_case",
            R"({"cause":"x","severity":"high","action":"Auto-Restart","explanation":"e"})",
            "schema"},
        Row{"missing_field", R"({"cause":"x","severity":"high","action":"wait"})", "schema"},
        Row{"extra_unit_field",
            R"({"cause":"x","severity":"high","action":"wait","explanation":"e","unit":"sshd.service"})",
            "schema"},
        Row{"number_field", R"({"cause":5,"severity":"high","action":"wait","explanation":"e"})",
            "schema"},
        Row{"empty_cause", R"({"cause":"  ","severity":"high","action":"wait","explanation":"e"})",
            "schema"},
        Row{"long_cause",
            R"({"cause":")" + std::string(400, 'x') +
                R"(","severity":"high","action":"wait","explanation":"e"})",
            "schema"},
        Row{"long_explanation",
            R"({"cause":"x","severity":"high","action":"wait","explanation":")" +
                std::string(3000, 'e') + R"("})",
            "schema"},
        Row{"oversized", std::string(kCap + 1, ' ') + kGood, "too_large"}),
    [](const auto& row) { return row.param.name; });

TEST(Answer, LineBreaksAndTabsAreFlattened) {
  const auto a =
      parse_answer(R"({"cause":"line1\nline2\r\nline3\u0007","severity":"low","action":"manual",)"
                   R"("explanation":"\t e\n"})",
                   kCap);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->cause, "line1 line2 line3\\x07");
  EXPECT_EQ(a->explanation, "e");
  EXPECT_EQ(a->action, proto::DiagnosisAction::kManual);
}

// The cause becomes a log line, an audit field and a cell of `ctl status`: a model (or a log line
// quoted by it) must not clear the operator's screen, write the clipboard (OSC 52), ring the
// bell, overwrite a line (lone CR) or send an 8-bit CSI there. JSON can carry C0 controls only
// escaped (\u001b) but DEL and C1 controls raw, as UTF-8.
TEST(Answer, EscapeSequencesComeOutInert) {
  const std::string answer =
      R"({"cause":"\u001b[2J\u001b]52;c;ZXZpbA==\u0007\rDB lock \u009b31m⚠️ preço)"
      "\x7f\xc2\x9b"
      R"(","severity":"high","action":"auto-restart",)"
      R"("explanation":"\u001b[31mLock timeouts\u001b[0m ❌ \u0000end"})";
  const auto a = parse_answer(answer, kCap);
  ASSERT_TRUE(a.has_value()) << a.error().detail;
  EXPECT_EQ(a->cause,
            R"(\x1b[2J\x1b]52;c;ZXZpbA==\x07\x0dDB lock \u009b31m⚠️ preço\x7f\u009b)");
  EXPECT_EQ(a->explanation, R"(\x1b[31mLock timeouts\x1b[0m ❌ \x00end)");
  for (const std::string* field : {&a->cause, &a->explanation}) {
    for (std::size_t i = 0; i < field->size(); ++i) {
      const auto c = static_cast<unsigned char>((*field)[i]);
      EXPECT_FALSE(c < 0x20 || c == 0x7f) << int{c} << " in " << *field;
      EXPECT_FALSE(c == 0xc2 && i + 1 < field->size() &&
                   static_cast<unsigned char>((*field)[i + 1]) < 0xa0)
          << *field;
    }
  }
}

TEST(Answer, RejectionDetailsQuoteTheAnswerInert) {
  const auto bad_field =
      parse_answer(R"({"cause":"x","severity":"high","action":"wait","explanation":"e",)"
                   R"("\u001b]52;c;eA==\u0007":"1"})",
                   kCap);
  ASSERT_FALSE(bad_field.has_value());
  EXPECT_EQ(bad_field.error().detail, R"(unexpected field \x1b]52;c;eA==\x07)");
  const auto bad_severity = parse_answer(
      R"({"cause":"x","severity":"\u001b[2Jhigh","action":"wait","explanation":"e"})", kCap);
  ASSERT_FALSE(bad_severity.has_value());
  EXPECT_EQ(bad_severity.error().detail, R"(severity not in enum: \x1b[2Jhigh)");
}

TEST(Answer, ExtractJsonObject) {
  EXPECT_EQ(extract_json_object("x {\"a\":{\"b\":1}} y"), "{\"a\":{\"b\":1}}");
  EXPECT_EQ(extract_json_object("no object"), "");
  EXPECT_EQ(extract_json_object("} {"), "");
}

}  // namespace
}  // namespace trading_heal::diagnoser
