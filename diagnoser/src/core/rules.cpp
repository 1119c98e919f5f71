#include "trading_heal/diagnoser/rules.hpp"

#include <algorithm>
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

namespace {

bool rule_matches(const Rule& rule, const std::string& lowered_line) {
  return std::any_of(rule.keywords.begin(), rule.keywords.end(), [&](const std::string& kw) {
    return lowered_line.find(kw) != std::string::npos;
  });
}

// Only the newest matching lines count: the 50 lines often span an earlier incident (or the
// previous run of the agent), whose errors must not outrank what the agent logs now. Errors
// logged since the agent's latest start describe the current incident: when there are any, they
// alone count; otherwise (a crash loop: the traceback is in the previous run) the whole window
// does. Indices of at most 8 matching lines, newest first.
std::vector<std::size_t> recent_matches(const std::vector<std::string>& lowered,
                                        const RuleTable& rules) {
  constexpr std::size_t kRecentMatches = 8;
  std::size_t run_start = 0;
  for (std::size_t i = lowered.size(); i-- > 0;) {
    if (lowered[i].find("agent initialized") != std::string::npos ||
        lowered[i].find("starting bootstrap") != std::string::npos) {
      run_start = i;
      break;
    }
  }
  std::vector<std::size_t> recent;
  auto collect = [&](std::size_t from) {
    for (std::size_t i = lowered.size(); i-- > from && recent.size() < kRecentMatches;) {
      if (std::any_of(rules.begin(), rules.end(),
                      [&](const Rule& rule) { return rule_matches(rule, lowered[i]); })) {
        recent.push_back(i);
      }
    }
  };
  collect(run_start);
  if (recent.empty() && run_start > 0) collect(0);
  return recent;
}

// No rule matched: what the probe's facts alone say.
RuleMatch from_symptoms(const Symptoms& symptoms) {
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

}  // namespace

RuleMatch classify(const std::vector<std::string>& lines, const Symptoms& symptoms,
                   const RuleTable& rules) {
  std::vector<std::string> lowered;
  lowered.reserve(lines.size());
  for (const auto& l : lines) lowered.push_back(to_lower(l));
  // Among the recent matching lines the most specific rule wins (a stall alternating "price
  // unavailable" and a DB lock timeout is a DB lock).
  const auto recent = recent_matches(lowered, rules);
  for (const auto& rule : rules) {
    for (std::size_t i : recent) {
      if (!rule_matches(rule, lowered[i])) continue;
      RuleMatch m{rule.category, rule.cause, rule.severity, rule.action, lines[i]};
      if (rule.category == "crash") {
        if (auto e = python_exception(lines); !e.empty()) m.cause = "Python crash: " + e;
      }
      return m;
    }
  }
  return from_symptoms(symptoms);
}

}  // namespace trading_heal::diagnoser
