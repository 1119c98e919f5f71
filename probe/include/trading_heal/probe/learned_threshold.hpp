// The stall threshold an agent's own history suggests (TRADING_HEAL_STALL_THRESHOLD=auto): the one
// rule, shared by the probe and trading-heal-replay --rhythm so that they cannot disagree, the
// summary of an agent's gaps it reads (made from every timestamp, or by the learning query in
// PostgreSQL), and the per-agent table the probe's verdicts use. Pure; not thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace trading_heal::probe {

// The rule: threshold = min(max_s, max(min_s, k x the p99.9 of the agent's gaps between
// decisions)), the gaps of its quiet hours left out, from enough history only.
struct ThresholdRule {
  // k = 3: on a generated month of six agents of different rhythms (bench/replay/README.md) the
  // p99.9 gap is at most 1.1x the period of a regular agent and the longest pause between a
  // bursty agent's bursts; three times it is beyond any gap of normal operation, and stalls of
  // 15 min and more stay far above it.
  double k = 3;
  // The bounds (TRADING_HEAL_STALL_THRESHOLD_MIN / _MAX): the floor keeps a fast agent's threshold
  // above a slow insert or a restart's bootstrap; the ceiling keeps a slow one's watched.
  double min_s = 300;
  double max_s = 3600;
  // Enough history: this many gaps, spanning this long (a day: every hour of it seen once).
  std::size_t min_gaps = 1000;
  double min_span_s = 86400;
  // An hour (UTC, of the gap's start) whose p99 gap is over `quiet_ratio` x the busiest hour's is
  // quiet (a nightly pause); only hours with `min_hour_gaps` gaps take part in that comparison.
  double quiet_ratio = 10;
  std::size_t min_hour_gaps = 10;
};

// The learning window (the probe's query reads this far back) and the refresh period.
inline constexpr double kLearnLookbackSeconds = 7 * 86400.0;
inline constexpr double kLearnRefreshSeconds = 3600;

// What the rule reads of one agent's gaps, by the UTC hour in which each gap began.
struct HourGaps {
  std::size_t count = 0;
  double p99_s = 0;             // nearest rank (PostgreSQL's percentile_disc)
  double sum_s = 0;             // the hour's gaps added up (the span is their sum)
  std::vector<double> longest;  // its longest gaps, longest first: at least tail_needed(total)
};
struct GapSummary {
  std::array<HourGaps, 24> hours;
  std::size_t gaps() const;
  double span_s() const;  // the first decision to the last
};

// How many of each hour's longest gaps the p99.9 of any set of hours needs, for an agent with
// `total` gaps: the p99.9 (nearest rank) of n gaps is the (n - ceil(0.999 n) + 1)-th longest, at
// most total / 1000 + 1 (one more for rounding). The learning query's SQL says the same
// (kLearnQuerySql: change them together).
std::size_t tail_needed(std::size_t total);

// The q-quantile (nearest rank, as PostgreSQL's percentile_disc) of sorted values; 0 when empty.
double nearest_rank(const std::vector<double>& sorted, double q);

// The summary of one agent's decision timestamps (epoch seconds, any order).
GapSummary summarize(std::vector<double> ts);

struct Recommendation {
  bool enough = false;     // enough history: threshold_s is the rule's answer
  double threshold_s = 0;  // 0 when not enough
  double p999_s = 0;       // the p99.9 gap of the active (not quiet) hours
  std::size_t gaps = 0;
  double span_s = 0;
  std::array<double, 24> hourly_p99_s{};
  bool hour_dependent = false;  // the hours' p99 differ by more than quiet_ratio
  std::vector<int> quiet_hours;
};
Recommendation recommend(const GapSummary& summary, const ThresholdRule& rule);

// The threshold one agent is judged by.
struct AgentThreshold {
  double seconds = 600;
  bool learned = false;
  bool operator==(const AgentThreshold&) const = default;
};

// The per-agent thresholds of the probe, keyed like the fleet query ((symbol, profile)). Without
// auto every agent has the fixed one; with auto each has the fixed one (the fallback: 600 s
// clamped to MIN..MAX) until its history is enough, then the rule's.
class ThresholdTable {
 public:
  ThresholdTable(std::vector<std::pair<std::string, std::string>> keys, double fixed_s);

  // A learning's answer: the summaries of the keys that had decisions in the window (a key
  // without one has no history: the fixed threshold). Returns the indices whose threshold changed.
  std::vector<std::size_t> learn(
      const std::map<std::pair<std::string, std::string>, GapSummary>& summaries,
      const ThresholdRule& rule);
  const AgentThreshold& at(std::size_t i) const { return thresholds_.at(i); }
  const std::optional<Recommendation>& recommendation(std::size_t i) const { return recs_.at(i); }
  std::size_t size() const { return thresholds_.size(); }
  std::size_t learned_count() const;

 private:
  std::vector<std::pair<std::string, std::string>> keys_;
  double fixed_s_;
  std::vector<AgentThreshold> thresholds_;
  std::vector<std::optional<Recommendation>> recs_;
};

// The learning query: per (symbol, profile) of $1/$2 (text[] literals), over the decisions since
// $3 (epoch seconds), the gaps between consecutive decisions, grouped by the UTC hour of the gap's
// start: (symbol, profile, hour, count, p99, sum, the longest gaps as float8[] longest first).
// The gaps are computed and aggregated in PostgreSQL: a few dozen rows come back, not the window.
extern const char* const kLearnQuerySql;

// One row of its answer.
struct LearnRow {
  std::string symbol, profile;
  int hour = 0;
  std::size_t count = 0;
  double p99_s = 0;
  double sum_s = 0;
  std::vector<double> longest;
};
// The rows, gathered by (symbol, profile); rows with an hour outside 0-23 are dropped.
std::map<std::pair<std::string, std::string>, GapSummary> summaries_of(
    const std::vector<LearnRow>& rows);
// "{1.5,2,3}" (a float8[] as PostgreSQL prints it) -> its numbers; nullopt when malformed.
std::optional<std::vector<double>> parse_float_array(const std::string& text);

}  // namespace trading_heal::probe
