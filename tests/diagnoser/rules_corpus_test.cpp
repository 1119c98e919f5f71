// The rule classifier against a corpus of real-format journal lines (rules_corpus.tsv): every
// line alone, redacted as the daemon does, must give its category. The bar is an accuracy of
// 90 %, for the compiled-in table and for the shipped rules file; every miss is printed so that
// a new rule's effect on the rest is visible.
#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "trading_heal/diagnoser/redact.hpp"
#include "trading_heal/diagnoser/rule_table.hpp"
#include "trading_heal/diagnoser/rules.hpp"

#ifndef TH_RULES_CORPUS
#error "TH_RULES_CORPUS (the path of rules_corpus.tsv) must be defined by the build"
#endif
#ifndef TH_SHIPPED_RULES
#error "TH_SHIPPED_RULES (the path of deploy/rules/trading-heal.rules) must be defined by the build"
#endif

namespace trading_heal::diagnoser {
namespace {

constexpr double kMinAccuracyPercent = 90.0;
constexpr std::size_t kMinRows = 80;

struct Row {
  std::size_t line_no = 0;
  std::string category;
  std::string text;
};

// CATEGORY<TAB>LINE; the line is everything after the first tab. '#' lines and blank ones skip.
std::vector<Row> read_corpus() {
  std::ifstream in(TH_RULES_CORPUS);
  EXPECT_TRUE(in) << "cannot read " << TH_RULES_CORPUS;
  std::vector<Row> rows;
  std::string line;
  for (std::size_t n = 1; std::getline(in, line); ++n) {
    if (line.empty() || line.front() == '#') continue;
    const auto tab = line.find('\t');
    EXPECT_NE(tab, std::string::npos) << "rules_corpus.tsv:" << n << ": no tab";
    if (tab == std::string::npos) continue;
    rows.push_back({n, line.substr(0, tab), line.substr(tab + 1)});
  }
  return rows;
}

// The share of rows classified as labelled, in percent; prints every miss.
double accuracy(const std::vector<Row>& rows, const RuleTable& table, const char* name) {
  std::size_t hits = 0;
  std::map<std::string, std::size_t> missed;  // by expected category
  for (const auto& r : rows) {
    const RuleMatch m = classify(redact_lines({r.text}), {proto::Verdict::kStalled, 700.0}, table);
    if (m.category == r.category) {
      ++hits;
      continue;
    }
    ++missed[r.category];
    std::cout << "MISS rules_corpus.tsv:" << r.line_no << " want=" << r.category
              << " got=" << m.category << ": " << r.text << "\n";
  }
  const double percent =
      rows.empty() ? 0.0 : 100.0 * static_cast<double>(hits) / static_cast<double>(rows.size());
  std::cout << name << ": accuracy " << hits << "/" << rows.size() << " = " << percent << " %";
  for (const auto& [category, n] : missed) std::cout << " " << category << "-" << n;
  std::cout << "\n";
  return percent;
}

TEST(RulesCorpus, BigEnoughAndCoversEveryCategory) {
  const auto rows = read_corpus();
  EXPECT_GE(rows.size(), kMinRows);
  std::set<std::string> labelled;
  for (const auto& r : rows) labelled.insert(r.category);
  for (const auto& rule : builtin_rules()) {
    EXPECT_TRUE(labelled.contains(rule.category)) << "no corpus line for " << rule.category;
  }
  EXPECT_TRUE(labelled.contains("stall")) << "no line that must not match any rule";
}

TEST(RulesCorpus, BuiltInTable) {
  const auto rows = read_corpus();
  EXPECT_GE(accuracy(rows, builtin_rules(), "built-in table"), kMinAccuracyPercent);
}

TEST(RulesCorpus, ShippedRulesFile) {
  const LoadedRules loaded = load_rules(TH_SHIPPED_RULES, "");
  for (const auto& e : loaded.errors) ADD_FAILURE() << e.to_string();
  ASSERT_FALSE(loaded.builtin);
  const auto rows = read_corpus();
  EXPECT_GE(accuracy(rows, loaded.table, "shipped rules file"), kMinAccuracyPercent);
}

}  // namespace
}  // namespace trading_heal::diagnoser
