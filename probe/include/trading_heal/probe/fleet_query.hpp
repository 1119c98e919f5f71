// The ONE decision-age query per cycle for the whole fleet, as pure pieces: the SQL text, the
// parameters built from the fleet and the AgeMemory, and the mapping of its rows to AgeFacts.
// The query is an index lookup per (symbol, profile): `unnest` of the fleet's keys with a
// LATERAL newest-row lookup bounded below by a per-key window start, never a scan or a GROUP BY
// over the table. See deploy/sql/001_decisions_symbol_profile_ts.sql for the optional index.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "trading_heal/common/config.hpp"
#include "trading_heal/probe/verdict.hpp"

namespace trading_heal::probe {

extern const char* const kFleetQuerySql;

struct FleetKey {
  std::string symbol;
  std::string profile;
  double since = 0;           // only rows with timestamp > since count
  bool check_exists = false;  // also ask whether the key ever had a row (cheap index probe)
};

struct FleetRow {
  std::optional<double> newest_ts;
  std::optional<bool> exists;  // only when check_exists
};

struct FleetParams {
  std::string symbols, profiles, since, check;  // PostgreSQL array literals
};

// Keys of the enabled agents, one per distinct (symbol, profile), in a stable order.
// `agent_key[i]` receives the index into the returned keys for agent i (-1 if disabled).
std::vector<FleetKey> fleet_keys(const std::vector<common::AgentSpec>& agents,
                                 const AgeMemory& memory, double now, double cap,
                                 std::vector<int>& agent_key);
FleetParams fleet_params(const std::vector<FleetKey>& keys);
// One row of the answer -> the DB part of an agent's AgeFacts.
void apply_row(const FleetRow& row, AgeFacts& out);

// {"a","b\"c"} — text[] literal with every element quoted and escaped.
std::string pg_text_array(const std::vector<std::string>& items);

}  // namespace trading_heal::probe
