#include "trading_heal/diagnoser/answer.hpp"

#include <nlohmann/json.hpp>

#include "trading_heal/common/text.hpp"

namespace trading_heal::diagnoser {
namespace {

// The model's text as one inert line, at the source: the cause becomes a log line, an audit
// field and a cell of `ctl status`. Line breaks (\n, \r\n) and tabs are the model's formatting
// and become spaces; every other control character — ESC sequences, a lone CR, BEL, DEL, C1 —
// is shown escaped by common::inert, which also replaces invalid UTF-8. Outer blanks trimmed.
std::string clean(std::string_view s) {
  std::string flat;
  flat.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n') {
      flat.push_back(' ');
    } else if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') {
      flat.push_back(' ');
      ++i;
    } else {
      flat.push_back(s[i]);
    }
  }
  std::string out = common::inert(flat);
  const auto b = out.find_first_not_of(' ');
  if (b == std::string::npos) return {};
  return out.substr(b, out.find_last_not_of(' ') - b + 1);
}

AnswerError schema(std::string detail) { return {"schema", std::move(detail)}; }

}  // namespace

std::string_view extract_json_object(std::string_view text) {
  if (const auto fence = text.find("```"); fence != std::string_view::npos) {
    std::size_t start = text.find('\n', fence);
    start = start == std::string_view::npos ? fence + 3 : start + 1;
    const auto close = text.find("```", start);
    text = text.substr(start,
                       close == std::string_view::npos ? std::string_view::npos : close - start);
  }
  const auto open = text.find('{');
  const auto last = text.rfind('}');
  if (open == std::string_view::npos || last == std::string_view::npos || last < open) return {};
  return text.substr(open, last - open + 1);
}

tl::expected<LlmAnswer, AnswerError> parse_answer(std::string_view text, std::size_t max_bytes) {
  if (text.size() > max_bytes) {
    return tl::unexpected(AnswerError{
        "too_large", std::to_string(text.size()) + " bytes > " + std::to_string(max_bytes)});
  }
  const std::string_view obj = extract_json_object(text);
  if (obj.empty()) return tl::unexpected(AnswerError{"parse", "no JSON object in the answer"});
  const auto j = nlohmann::json::parse(obj, nullptr, false);
  if (j.is_discarded()) return tl::unexpected(AnswerError{"parse", "invalid JSON"});
  if (!j.is_object()) return tl::unexpected(schema("not an object"));
  for (const auto& [key, value] : j.items()) {
    if (key != "cause" && key != "severity" && key != "action" && key != "explanation") {
      return tl::unexpected(schema("unexpected field " + clean(key.substr(0, 40))));
    }
    if (!value.is_string()) return tl::unexpected(schema("field " + key + " is not a string"));
  }
  for (const char* key : {"cause", "severity", "action", "explanation"}) {
    if (!j.contains(key)) return tl::unexpected(schema(std::string("missing field ") + key));
  }
  LlmAnswer a;
  a.cause = clean(j["cause"].get<std::string>());
  a.explanation = clean(j["explanation"].get<std::string>());
  if (a.cause.empty()) return tl::unexpected(schema("empty cause"));
  if (a.cause.size() > kMaxCauseBytes) return tl::unexpected(schema("cause too long"));
  if (a.explanation.size() > kMaxExplanationBytes) {
    return tl::unexpected(schema("explanation too long"));
  }
  const auto& sev = j["severity"].get_ref<const std::string&>();
  const auto severity = proto::severity_from_string(sev);
  if (!severity) {
    return tl::unexpected(schema("severity not in enum: " + clean(sev.substr(0, 40))));
  }
  const auto& act = j["action"].get_ref<const std::string&>();
  const auto action = proto::diagnosis_action_from_string(act);
  if (!action) return tl::unexpected(schema("action not in enum: " + clean(act.substr(0, 40))));
  a.severity = *severity;
  a.action = *action;
  return a;
}

}  // namespace trading_heal::diagnoser
