// The incident machine's table (transitions.hpp): total, unambiguous, every phase reachable and
// left again; and docs/actuator-states.md is what the table makes (TH_UPDATE_DOCS=1 rewrites
// it).
#include "trading_heal/actuator/transitions.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <tuple>
#include <vector>

#include "support/bed.hpp"

namespace trading_heal::actuator {
namespace {

std::vector<Phase> all_phases() {
  std::vector<Phase> v;
  for (int p = 0; p < kPhaseCount; ++p) v.push_back(static_cast<Phase>(p));
  return v;
}

std::vector<Event> all_events() {
  std::vector<Event> v;
  for (int e = 0; e < kEventCount; ++e) v.push_back(static_cast<Event>(e));
  return v;
}

std::vector<const Transition*> rows_of(Phase p, Event e) {
  std::vector<const Transition*> v;
  for (const auto& t : transitions()) {
    if (t.from == p && t.event == e) v.push_back(&t);
  }
  return v;
}

std::string pair(Phase p, Event e) {
  return std::string(to_string(p)) + " x " + std::string(to_string(e));
}

// The phases reachable from `start` through the rows (any event, any guard).
std::set<Phase> reachable(Phase start) {
  std::set<Phase> seen{start};
  std::vector<Phase> todo{start};
  while (!todo.empty()) {
    const Phase p = todo.back();
    todo.pop_back();
    for (const auto& t : transitions()) {
      if (t.from == p && seen.insert(t.to).second) todo.push_back(t.to);
    }
  }
  return seen;
}

TEST(TransitionsTest, EveryPhaseAndEventHasANameOfItsOwn) {
  std::set<std::string> names;
  for (auto p : all_phases()) EXPECT_TRUE(names.insert(std::string(to_string(p))).second);
  for (auto e : all_events()) {
    EXPECT_TRUE(names.insert(std::string(to_string(e))).second) << to_string(e);
    EXPECT_FALSE(describe(e).empty()) << to_string(e);
  }
  for (auto p : all_phases()) EXPECT_EQ(phase_from_string(to_string(p)), p);
}

TEST(TransitionsTest, EveryPairHasRowsOrIsIgnoredNeverBoth) {
  for (auto p : all_phases()) {
    for (auto e : all_events()) {
      const bool rows = !rows_of(p, e).empty();
      EXPECT_NE(rows, is_ignored(p, e))
          << pair(p, e) << (rows ? ": rows and ignored" : ": neither");
    }
  }
  for (const auto& i : ignored_events()) {
    EXPECT_NE(i.phases, 0U) << to_string(i.event);
    EXPECT_EQ(i.phases & ~kEveryPhase, 0U) << to_string(i.event);
    EXPECT_FALSE(i.why.empty()) << to_string(i.event);
  }
}

// Rows of one (phase, event) are tried in order: a row without a guard must be the last (any
// after it could never fire), and no guard may appear twice (the second could never fire).
TEST(TransitionsTest, NoRowIsShadowedAndNoGuardRepeats) {
  for (auto p : all_phases()) {
    for (auto e : all_events()) {
      const auto rows = rows_of(p, e);
      std::set<const Guard*> guards;
      for (std::size_t i = 0; i < rows.size(); ++i) {
        if (rows[i]->guard == nullptr) {
          EXPECT_EQ(i + 1, rows.size()) << pair(p, e) << ": rows after an unguarded one";
        } else {
          EXPECT_TRUE(guards.insert(rows[i]->guard).second)
              << pair(p, e) << ": guard " << rows[i]->guard->name << " twice";
        }
      }
    }
  }
}

TEST(TransitionsTest, GuardsAndActionsAreNamedOnce) {
  std::map<std::string_view, const void*> names;
  for (const auto& t : transitions()) {
    for (auto [name, text, ptr] :
         {std::tuple{t.guard ? t.guard->name : "", t.guard ? t.guard->text : "x",
                     static_cast<const void*>(t.guard)},
          std::tuple{t.action ? t.action->name : "", t.action ? t.action->text : "x",
                     static_cast<const void*>(t.action)}}) {
      if (ptr == nullptr) continue;
      EXPECT_FALSE(name.empty());
      EXPECT_FALSE(text.empty()) << name;
      auto [it, fresh] = names.emplace(name, ptr);
      EXPECT_EQ(it->second, ptr) << "two guards or actions named " << name;
    }
  }
}

TEST(TransitionsTest, EveryPhaseIsReachedAndLeftAgain) {
  EXPECT_EQ(reachable(Phase::kHealthy).size(), static_cast<std::size_t>(kPhaseCount));
  for (auto p : all_phases()) {
    EXPECT_EQ(reachable(p).count(Phase::kHealthy), 1U) << to_string(p) << " is a trap";
  }
  // Only the table changes phases, and every input's own event enters the machine somewhere.
  for (auto e : all_events()) {
    bool somewhere = false;
    for (auto p : all_phases()) somewhere = somewhere || !rows_of(p, e).empty();
    EXPECT_TRUE(somewhere || e == Event::kUnknown) << to_string(e) << " has no row at all";
  }
}

// A follow-up event must mean something in the phase it is fired in, and follow-ups must end.
TEST(TransitionsTest, FollowUpEventsHaveRowsAndEnd) {
  for (const auto& t : transitions()) {
    if (!t.then) continue;
    EXPECT_FALSE(rows_of(t.to, *t.then).empty())
        << pair(t.from, t.event) << " then " << to_string(*t.then) << " in " << to_string(t.to);
  }
  // No cycle among (phase, event) nodes linked by `then`.
  std::function<bool(const Transition&, int)> ends = [&](const Transition& t, int depth) {
    if (!t.then) return true;
    if (depth > kPhaseCount * kEventCount) return false;
    for (const auto* n : rows_of(t.to, *t.then)) {
      if (!ends(*n, depth + 1)) return false;
    }
    return true;
  };
  for (const auto& t : transitions()) EXPECT_TRUE(ends(t, 0)) << pair(t.from, t.event);
}

// docs/actuator-states.md is generated from the table: it cannot drift from the code.
TEST(TransitionsTest, TheStatesDocumentIsTheTables) {
  const std::string path = test::Bed::source_dir() + "/docs/actuator-states.md";
  const std::string made = states_markdown();
  if (const char* u = std::getenv("TH_UPDATE_DOCS"); u != nullptr && std::string(u) == "1") {
    std::ofstream(path) << made;
  }
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << path << " is missing: run with TH_UPDATE_DOCS=1";
  std::stringstream committed;
  committed << in.rdbuf();
  EXPECT_EQ(committed.str(), made)
      << path << " differs from the table: run actuator_transitions_test with TH_UPDATE_DOCS=1";
  EXPECT_EQ(made.find("**missing**"), std::string::npos);
}

}  // namespace
}  // namespace trading_heal::actuator
