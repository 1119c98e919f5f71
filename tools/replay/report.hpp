// trading-heal-replay's output: tables for people, JSON for tools.
#pragma once

#include <array>
#include <cstddef>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "compare.hpp"
#include "replay.hpp"
#include "rhythm.hpp"

namespace trading_heal::replay {

using json = nlohmann::json;
using PerAgent = std::map<std::string, std::array<std::size_t, 3>>;  // agreed, ours, theirs

std::string iso(double t);  // YYYY-MM-DDTHH:MM:SSZ

struct Totals {
  std::size_t restarts = 0, needless = 0, held = 0, stalls = 0, caught = 0;
  double detection_sum = 0;
};
Totals totals(const Result& r);

json to_json(const Result& r, bool findings);
void print_table(const Result& r, bool findings);
// The same history under each value of one setting, side by side.
void print_side_by_side(const std::string& name,
                        const std::vector<std::pair<std::string, Result>>& results);
json rhythm_json(const Rhythm& r, std::size_t at_fixed);
void print_rhythm_row(const Rhythm& r, std::size_t at_fixed);
void print_comparison(const Comparison& c, const PerAgent& per, double window, bool as_json);

}  // namespace trading_heal::replay
