// Each agent's own rhythm, from its decision history: the gaps between its decisions (median,
// p99, p99.9, max), whether they depend on the hour of the day, and the stall threshold its
// history suggests, with the stalls that threshold would have raised.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "replay.hpp"
#include "trading_heal/probe/learned_threshold.hpp"

namespace trading_heal::replay {

// The recommendation is the probe's own rule (probe/learned_threshold.hpp: the larger of MIN and
// k = 3 x the p99.9 gap of the agent's active hours, at most MAX, from 1000 gaps over 24 h), so
// that what the tool suggests is what TRADING_HEAL_STALL_THRESHOLD=auto learns.
using RhythmOptions = probe::ThresholdRule;

struct Rhythm {
  std::string agent;
  std::size_t gaps = 0;
  double median_s = 0;
  double p99_s = 0;
  double p999_s = 0;
  double max_s = 0;
  // p99 of the gaps that began in each UTC hour (0 when the hour had none), from the rule.
  std::array<double, 24> hourly_p99_s{};
  // The hours' p99 differ by more than 10x (e.g. a nightly pause): one threshold cannot fit
  // every hour. The quiet hours are those (UTC) whose p99 is over 10x the busiest hour's; the
  // recommendation then comes from the other hours' gaps, and the quiet hours' long gaps are
  // among the stalls it would raise.
  bool hour_dependent = false;
  std::vector<int> quiet_hours;
  // The same by day of the week (0 = Sunday, UTC): a weekday whose p99 gap is over 10x the
  // busiest day's (an agent that rests on weekends).
  std::array<double, 7> weekday_p99_s{};
  bool weekday_dependent = false;
  double recommended_s = 0;     // 0: too little history (the fixed threshold stands)
  std::size_t would_raise = 0;  // gaps longer than the recommendation (stalls it would raise)
};

std::vector<Rhythm> rhythms(const History& history, const RhythmOptions& options = {});

}  // namespace trading_heal::replay
