// The audit actions: the enum's names are unique and valid label values, and the two documents
// that list them (PROTOCOL.md, docs/operations.md) list exactly these, so they cannot drift.
#include "trading_heal/proto/actions.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace {

using namespace trading_heal;

std::string read(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The backticked words of `text` from `start` to the first "." that ends a sentence after it.
std::set<std::string> listed(const std::string& text, const std::string& start,
                             const std::string& end) {
  const auto b = text.find(start);
  EXPECT_NE(b, std::string::npos) << start;
  const auto e = text.find(end, b + start.size());
  const std::string part = text.substr(b + start.size(), e - b - start.size());
  std::set<std::string> out;
  const std::regex word("`([a-z_]+)`");
  for (std::sregex_iterator it(part.begin(), part.end(), word), last; it != last; ++it) {
    out.insert((*it)[1]);
  }
  return out;
}

std::set<std::string> audit_actions() {
  std::set<std::string> out;
  for (const auto& a : proto::kActions) {
    if (!proto::is_state_only(a.action)) out.insert(std::string(a.name));
  }
  return out;
}

TEST(Actions, NamesAreUniqueLabelValuesAndRoundTrip) {
  std::set<std::string> seen;
  const std::regex label("^[a-z_]{1,32}$");
  for (const auto& a : proto::kActions) {
    EXPECT_TRUE(seen.insert(std::string(a.name)).second) << a.name;
    EXPECT_TRUE(std::regex_match(std::string(a.name), label)) << a.name;
    EXPECT_EQ(proto::to_string(a.action), a.name);
  }
}

TEST(Actions, ProtocolListsExactlyTheAuditActions) {
  const auto doc =
      listed(read(TH_SOURCE_DIR "/proto/PROTOCOL.md"), "`action` R\n(", "; the code's list");
  EXPECT_EQ(doc, audit_actions());
}

TEST(Actions, OperationsGuideListsExactlyTheAuditActions) {
  const auto doc = listed(read(TH_SOURCE_DIR "/docs/operations.md"), "Actions: ", "\n\n");
  EXPECT_EQ(doc, audit_actions());
}

}  // namespace
