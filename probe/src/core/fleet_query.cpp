// The fleet's decision-age query, its planner and its parameters.
#include "trading_heal/probe/fleet_query.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

namespace trading_heal::probe {

// $1 symbols, $2 profiles, $3 since, $4/$5 catch-up slice (lo, hi] (NULL: none), $6 existence
// checks, $7 per-key LATERAL lower bounds (NULL: none). Three parts, one row per (key, part):
//  1. ONE range scan of the (timestamp) index over `timestamp > since` (plus the slice), joined
//     to the keys, max per key: O(rows written since the last cycle), shared by the whole fleet;
//  2. where the composite index exists, a backward index probe per catching-up key;
//  3. EXISTS on (symbol, profile) for keys seen for the first time.
// The session runs with plan_cache_mode = force_custom_plan so the range is planned with its
// real bounds (a generic plan would guess a third of the table), and without JIT (pg_store.cpp).
const char* const kFleetQuerySql =
    "WITH k AS MATERIALIZED (SELECT * FROM unnest($1::text[], $2::text[], $6::bool[],"
    " $7::float8[]) WITH ORDINALITY AS k(symbol, profile, chk, lat, i))"
    " SELECT k.i, max(d.\"timestamp\") AS ts, NULL::bool AS seen FROM btc.decisions d"
    " JOIN k ON d.symbol = k.symbol AND d.profile = k.profile"
    " WHERE d.\"timestamp\" > $3::float8"
    " OR (d.\"timestamp\" > $4::float8 AND d.\"timestamp\" <= $5::float8) GROUP BY k.i"
    " UNION ALL SELECT k.i, l.ts, NULL FROM k CROSS JOIN LATERAL (SELECT x.\"timestamp\" AS ts"
    " FROM btc.decisions x WHERE x.symbol = k.symbol AND x.profile = k.profile"
    " AND x.\"timestamp\" > k.lat ORDER BY x.\"timestamp\" DESC LIMIT 1) l WHERE k.lat IS NOT NULL"
    " UNION ALL SELECT k.i, NULL, EXISTS (SELECT 1 FROM btc.decisions e"
    " WHERE e.symbol = k.symbol AND e.profile = k.profile) FROM k WHERE k.chk";

FleetPlanner::FleetPlanner(const std::vector<common::AgentSpec>& agents,
                           FleetPlannerSettings settings)
    : s_(settings), slice_w_(std::max(settings.min_slice, settings.first_slice)) {
  std::map<std::pair<std::string, std::string>, int> index;
  agent_key_.assign(agents.size(), -1);
  for (std::size_t i = 0; i < agents.size(); ++i) {
    const auto& a = agents[i];
    if (!a.enabled) continue;
    auto [it, inserted] = index.try_emplace({a.symbol, a.profile}, static_cast<int>(keys_.size()));
    if (inserted) keys_.push_back(Key{a.symbol, a.profile});
    agent_key_[i] = it->second;
  }
}

FleetPlan FleetPlanner::plan(double now) const {
  FleetPlan p;
  p.now = now;
  p.since = last_now_ ? std::min(*last_now_, now) - s_.margin : now - s_.first_slice;
  const std::size_t n = keys_.size();
  p.symbols.reserve(n);
  p.profiles.reserve(n);
  p.check.assign(n, false);
  p.lateral.assign(n, std::nullopt);
  std::optional<double> hi;
  for (std::size_t k = 0; k < n; ++k) {
    const Key& key = keys_[k];
    p.symbols.push_back(key.symbol);
    p.profiles.push_back(key.profile);
    if (key.state == State::kNew) p.check[k] = true;
    if (key.state != State::kNew && key.state != State::kCatchingUp) continue;
    // A new key's gap starts below this plan's range; a catching-up key's below its reach.
    const double reach = key.state == State::kNew ? p.since : key.reach;
    if (composite_) {
      if (reach > now - s_.cap) p.lateral[k] = now - s_.cap;
    } else if (key.state == State::kCatchingUp) {
      hi = std::max(hi.value_or(reach), reach);
    }
  }
  if (hi) {
    const double lo = std::max(*hi - slice_w_, now - s_.cap);
    if (lo < *hi) p.slice = {lo, *hi};
  }
  return p;
}

void FleetPlanner::apply(const FleetPlan& plan, const std::vector<FleetRow>& rows, double seconds) {
  last_now_ = std::max(last_now_.value_or(plan.now), plan.now);
  for (std::size_t k = 0; k < keys_.size() && k < rows.size(); ++k) {
    Key& key = keys_[k];
    const FleetRow& row = rows[k];
    if (row.newest_ts) {
      // Timestamps only grow: an older row found by a slice never replaces a newer one.
      key.newest =
          key.state == State::kKnown ? std::max(key.newest, *row.newest_ts) : *row.newest_ts;
      key.state = State::kKnown;
      continue;
    }
    if (key.state == State::kNew) {
      if (row.exists && !*row.exists) {
        key.state = State::kNeverSeen;
        continue;
      }
      key.state = State::kCatchingUp;
      key.reach = plan.since;
    }
    if (key.state != State::kCatchingUp) continue;
    if (k < plan.lateral.size() && plan.lateral[k]) {
      key.reach = std::min(key.reach, *plan.lateral[k]);
    } else if (plan.slice && plan.slice->first < key.reach && key.reach <= plan.slice->second) {
      key.reach = plan.slice->first;
    }
    if (key.reach <= plan.now - s_.cap) key.state = State::kOlderThanCap;
  }
  if (plan.slice) {
    // Grow carefully (older rows may be colder in the cache), shrink fast.
    if (seconds < s_.target_seconds / 4) {
      slice_w_ = std::min(slice_w_ * 2, s_.cap);
    } else if (seconds > s_.target_seconds) {
      slice_w_ = std::max(slice_w_ / 2, s_.min_slice);
    }
  }
}

AgeFacts FleetPlanner::facts(std::size_t agent) const {
  AgeFacts f;
  const int k = agent < agent_key_.size() ? agent_key_[agent] : -1;
  if (k < 0) return f;
  const Key& key = keys_[static_cast<std::size_t>(k)];
  switch (key.state) {
    case State::kKnown:
      f.db = DbAnswer::kRow;
      f.newest_ts = key.newest;
      break;
    case State::kOlderThanCap:
      f.db = DbAnswer::kOlderThanCap;
      break;
    case State::kNeverSeen:
      f.db = DbAnswer::kNeverSeen;
      break;
    case State::kNew:
    case State::kCatchingUp:
      break;  // not known yet: the heartbeat tells meanwhile
  }
  return f;
}

std::size_t FleetPlanner::catching_up() const {
  return static_cast<std::size_t>(std::count_if(keys_.begin(), keys_.end(), [](const Key& k) {
    return k.state == State::kNew || k.state == State::kCatchingUp;
  }));
}

std::string pg_text_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

namespace {
std::string num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.6f", v);
  return buf;
}
}  // namespace

FleetParams fleet_params(const FleetPlan& plan) {
  FleetParams p;
  p.symbols = pg_text_array(plan.symbols);
  p.profiles = pg_text_array(plan.profiles);
  p.check = "{";
  p.lateral = "{";
  for (std::size_t i = 0; i < plan.check.size(); ++i) {
    p.check += (i > 0 ? "," : "") + std::string(plan.check[i] ? "t" : "f");
  }
  for (std::size_t i = 0; i < plan.lateral.size(); ++i) {
    p.lateral += (i > 0 ? "," : "") + (plan.lateral[i] ? num(*plan.lateral[i]) : "NULL");
  }
  p.check += "}";
  p.lateral += "}";
  p.since = num(plan.since);
  if (plan.slice) {
    p.slice_lo = num(plan.slice->first);
    p.slice_hi = num(plan.slice->second);
  }
  return p;
}

}  // namespace trading_heal::probe
