// The fleet's decision-age query and its parameters.
#include "trading_heal/probe/fleet_query.hpp"

#include <cstdio>
#include <map>

namespace trading_heal::probe {

// $1 symbols, $2 profiles, $3 window starts, $4 whether to check existence. Per key: the newest
// row after `since` (an index lookup: backward on (symbol, profile, timestamp) where the
// optional composite index exists, else backward on (timestamp) stopping at the first match or
// at `since`), and, only when asked, EXISTS on (symbol, profile). ORDER BY i keeps key order.
const char* const kFleetQuerySql =
    "SELECT k.i, d.ts, CASE WHEN k.chk THEN EXISTS (SELECT 1 FROM btc.decisions e"
    " WHERE e.symbol = k.symbol AND e.profile = k.profile) END AS seen"
    " FROM unnest($1::text[], $2::text[], $3::float8[], $4::bool[])"
    " WITH ORDINALITY AS k(symbol, profile, since, chk, i)"
    " LEFT JOIN LATERAL (SELECT x.\"timestamp\" AS ts FROM btc.decisions x"
    " WHERE x.symbol = k.symbol AND x.profile = k.profile AND x.\"timestamp\" > k.since"
    " ORDER BY x.\"timestamp\" DESC LIMIT 1) d ON true ORDER BY k.i";

std::vector<FleetKey> fleet_keys(const std::vector<common::AgentSpec>& agents,
                                 const AgeMemory& memory, double now, double cap,
                                 std::vector<int>& agent_key) {
  std::vector<FleetKey> keys;
  std::map<std::string, int> index;
  agent_key.assign(agents.size(), -1);
  for (std::size_t i = 0; i < agents.size(); ++i) {
    const auto& a = agents[i];
    if (!a.enabled) continue;
    const std::string k = age_key(a.symbol, a.profile);
    auto [it, inserted] = index.try_emplace(k, static_cast<int>(keys.size()));
    if (inserted) {
      keys.push_back(FleetKey{a.symbol, a.profile, window_start(memory, k, now, cap),
                              memory.find(k) == nullptr});
    }
    agent_key[i] = it->second;
  }
  return keys;
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

FleetParams fleet_params(const std::vector<FleetKey>& keys) {
  std::vector<std::string> symbols, profiles;
  FleetParams p;
  p.since = "{";
  p.check = "{";
  char buf[40];
  for (std::size_t i = 0; i < keys.size(); ++i) {
    symbols.push_back(keys[i].symbol);
    profiles.push_back(keys[i].profile);
    std::snprintf(buf, sizeof buf, "%.6f", keys[i].since);
    p.since += (i > 0 ? "," : "") + std::string(buf);
    p.check += (i > 0 ? "," : "") + std::string(keys[i].check_exists ? "t" : "f");
  }
  p.since += "}";
  p.check += "}";
  p.symbols = pg_text_array(symbols);
  p.profiles = pg_text_array(profiles);
  return p;
}

void apply_row(const FleetRow& row, AgeFacts& out) {
  if (row.newest_ts) {
    out.db = DbAnswer::kRow;
    out.newest_ts = *row.newest_ts;
  } else if (row.exists && !*row.exists) {
    out.db = DbAnswer::kNeverSeen;
  } else {
    // Rows exist (or we remember one) but none after the window start: the memory has the
    // exact newest timestamp, or the age is beyond the cap.
    out.db = DbAnswer::kOlderThanCap;
  }
}

}  // namespace trading_heal::probe
