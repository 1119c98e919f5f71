#include "trading_heal/diagnoser/rules.hpp"

#include <array>
#include <cctype>
#include <cmath>
#include <string_view>

namespace trading_heal::diagnoser {
namespace {

using proto::DiagnosisAction;
using proto::Severity;

// Only ASCII, as the rules' keywords: std::tolower would depend on the process's locale and
// could rewrite the bytes of UTF-8 text ("Preço indisponível").
std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool is_ident(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '.';
}

// The exception named in `line` ("KeyError: 'close'"), if any: a dotted identifier ending in
// Error/Exception/Exit/Interrupt, followed by ':' or the end of the line.
std::string exception_in(std::string_view line) {
  static constexpr std::array<std::string_view, 4> kSuffixes = {"Error", "Exception", "Exit",
                                                                "Interrupt"};
  std::size_t i = 0;
  while (i < line.size()) {
    if (!is_ident(line[i])) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < line.size() && is_ident(line[j])) ++j;
    const std::string_view word = line.substr(i, j - i);
    const bool at_end = j == line.size();
    const bool colon = !at_end && line[j] == ':';
    for (auto suffix : kSuffixes) {
      if ((at_end || colon) && word.size() > suffix.size() && word.ends_with(suffix)) {
        std::string_view rest = colon ? line.substr(j + 1) : std::string_view{};
        while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
        std::string out(word);
        if (!rest.empty()) out += ": " + std::string(rest.substr(0, 160));
        return out;
      }
    }
    i = j;
  }
  return {};
}

}  // namespace

std::string python_exception(const std::vector<std::string>& lines) {
  std::size_t header = lines.size();
  for (std::size_t i = lines.size(); i-- > 0;) {
    if (to_lower(lines[i]).find("traceback (most recent call last)") != std::string::npos) {
      header = i;
      break;
    }
  }
  if (header == lines.size()) return {};
  for (std::size_t i = lines.size(); i-- > header + 1;) {
    if (auto e = exception_in(lines[i]); !e.empty()) return e;
  }
  return {};
}

RuleMatch classify(const std::vector<std::string>& lines, const Symptoms& symptoms) {
  return classify(lines, symptoms, builtin_rules());
}

RuleMatch classify(const std::vector<std::string>& lines, const Symptoms& symptoms,
                   const RuleTable& rules) {
  std::vector<std::string> lowered;
  lowered.reserve(lines.size());
  for (const auto& l : lines) lowered.push_back(to_lower(l));
  // Only the newest matching lines count: the 50 lines often span an earlier incident (or the
  // previous run of the agent), whose errors must not outrank what the agent logs now. Among
  // those recent lines the most specific rule wins (a stall alternating "price unavailable"
  // and a DB lock timeout is a DB lock).
  constexpr std::size_t kRecentMatches = 8;
  std::vector<std::size_t> recent;  // indices of matching lines, newest first
  auto matches = [&](const Rule& rule, std::size_t i) {
    for (const auto& kw : rule.keywords) {
      if (lowered[i].find(kw) != std::string::npos) return true;
    }
    return false;
  };
  // Errors logged since the agent's latest start describe the current incident: when there
  // are any, they alone count. Otherwise (a crash loop: the traceback is in the previous run)
  // the whole window does.
  std::size_t run_start = 0;
  for (std::size_t i = lowered.size(); i-- > 0;) {
    if (lowered[i].find("agent initialized") != std::string::npos ||
        lowered[i].find("starting bootstrap") != std::string::npos) {
      run_start = i;
      break;
    }
  }
  auto collect = [&](std::size_t from) {
    for (std::size_t i = lowered.size(); i-- > from && recent.size() < kRecentMatches;) {
      for (const auto& rule : rules) {
        if (matches(rule, i)) {
          recent.push_back(i);
          break;
        }
      }
    }
  };
  collect(run_start);
  if (recent.empty() && run_start > 0) collect(0);
  for (const auto& rule : rules) {
    for (std::size_t i : recent) {
      if (!matches(rule, i)) continue;
      RuleMatch m{rule.category, rule.cause, rule.severity, rule.action, lines[i]};
      if (rule.category == "crash") {
        if (auto e = python_exception(lines); !e.empty()) m.cause = "Python crash: " + e;
      }
      return m;
    }
  }
  RuleMatch m;
  m.severity = Severity::kMedium;
  m.action = DiagnosisAction::kAutoRestart;
  if (symptoms.verdict == proto::Verdict::kStalled) {
    m.category = "stall";
    m.cause = "No decisions";
    if (symptoms.decision_age_seconds) {
      m.cause += " for " + std::to_string(std::lround(*symptoms.decision_age_seconds)) + "s";
    }
    m.cause += "; no known error in the logs";
  } else if (symptoms.verdict == proto::Verdict::kDown) {
    m.category = "down";
    m.cause = "Agent down; no known error in the logs";
    m.severity = Severity::kHigh;
  } else {
    m.category = "unknown";
    m.cause = "No known cause in the logs";
  }
  return m;
}

}  // namespace trading_heal::diagnoser
