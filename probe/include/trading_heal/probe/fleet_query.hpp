// The ONE decision-age query per cycle for the whole fleet, as pure pieces: the SQL text, the
// FleetPlanner that decides each cycle's search ranges from what earlier cycles found, and the
// parameters built from a plan.
//
// Fast on the operators' indexes alone ((timestamp), (symbol), (symbol, profile)): every cycle
// ONE bounded range scan of the (timestamp) index over the rows written since the last answered
// cycle (minus a margin of a few seconds for late commits), shared by all keys, max per key.
// Timestamps only grow, so the newest timestamp per (symbol, profile) is remembered across
// cycles. A key not seen since the probe started is caught up once: its existence is checked
// (one (symbol, profile) index probe) and the window below the first scan is covered by time
// slices, newest first, one slice per cycle, the slice width adapted to the query's time, until
// a row or the cap is reached ("older than the cap"). Where the optional composite index exists
// (deploy/sql/001, detected at connect), catching up is one LATERAL backward index probe per key
// instead.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "trading_heal/common/config.hpp"
#include "trading_heal/probe/verdict.hpp"

namespace trading_heal::probe {

extern const char* const kFleetQuerySql;

// What the query said about one key.
struct FleetRow {
  std::optional<double> newest_ts;  // newest timestamp among the ranges searched for the key
  std::optional<bool> exists;       // only when the plan asked (check)
};

// One cycle's query.
struct FleetPlan {
  double now = 0;                                  // probe wall clock when planned
  std::vector<std::string> symbols, profiles;      // one per key
  double since = 0;                                // every key: rows with timestamp > since
  std::optional<std::pair<double, double>> slice;  // catching-up keys: rows in (lo, hi]
  std::vector<bool> check;                         // per key: ask whether it ever had a row
  std::vector<std::optional<double>> lateral;      // per key: newest row > bound (composite index)
};

struct FleetParams {
  std::string symbols, profiles, check, lateral;         // PostgreSQL array literals
  std::optional<std::string> since, slice_lo, slice_hi;  // float8 text; nullopt = NULL
};
FleetParams fleet_params(const FleetPlan& plan);

// How far each cycle's range reaches below the last answered cycle, in seconds: a row whose
// commit came more than this after its timestamp, and after the cycle that covered its time, is
// never seen. What that costs: the key keeps its previous row's timestamp until the agent's next
// row (one write period later), i.e. its age reads too old by at most one write period, and only
// if the agent's commit was delayed by over 5 s; ages are compared with stall thresholds of
// minutes. Rows written while PostgreSQL was unreachable are not affected: an unanswered cycle
// does not move the range.
inline constexpr double kLateCommitMargin = 5;

struct FleetPlannerSettings {
  double cap = 1800;                  // exact ages up to this; beyond it "older than the cap"
  double margin = kLateCommitMargin;  // re-scan this far below the last answered cycle
  double first_slice = 60;            // the first cycle's range below now
  double min_slice = 10;              // catch-up slice width bounds (seconds of table time)
  double target_seconds = 0.01;  // slice width adapts so that a catch-up query takes about this
};

class FleetPlanner {
 public:
  FleetPlanner(const std::vector<common::AgentSpec>& agents, FleetPlannerSettings settings);

  FleetPlan plan(double now) const;
  // The answer to `plan` (rows in key order); `seconds` is the query's wall time.
  void apply(const FleetPlan& plan, const std::vector<FleetRow>& rows, double seconds);
  // Whether the composite (symbol, profile, timestamp) index exists (from the connection).
  void set_composite_index(bool present) { composite_ = present; }

  // The DB part of agent i's AgeFacts from everything answered so far (kUnavailable while its
  // key is still being caught up, or for a disabled agent).
  AgeFacts facts(std::size_t agent) const;
  std::size_t key_count() const { return keys_.size(); }
  int key_of(std::size_t agent) const { return agent_key_[agent]; }
  std::size_t catching_up() const;
  double slice_width() const { return slice_w_; }

  enum class State { kNew, kCatchingUp, kKnown, kOlderThanCap, kNeverSeen };
  State state(std::size_t key) const { return keys_[key].state; }

 private:
  struct Key {
    std::string symbol, profile;
    State state = State::kNew;
    double newest = 0;  // kKnown
    double reach = 0;   // kCatchingUp: no row newer than this exists
  };
  FleetPlannerSettings s_;
  std::vector<Key> keys_;
  std::vector<int> agent_key_;
  std::optional<double> last_now_;  // `now` of the last answered plan
  double slice_w_;
  bool composite_ = false;
};

// {"a","b\"c"} — text[] literal with every element quoted and escaped.
std::string pg_text_array(const std::vector<std::string>& items);

}  // namespace trading_heal::probe
