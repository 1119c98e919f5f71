// The learned stall threshold: the rule, the gap summary it reads, the per-agent table.
#include "trading_heal/probe/learned_threshold.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>

namespace trading_heal::probe {

const char* const kLearnQuerySql =
    "WITH keys AS (SELECT k.symbol, k.profile FROM unnest($1::text[], $2::text[]) AS "
    "k(symbol, profile)),"
    " d AS (SELECT d.symbol, d.profile, d.\"timestamp\" AS ts,"
    " lag(d.\"timestamp\") OVER (PARTITION BY d.symbol, d.profile ORDER BY d.\"timestamp\") AS prev"
    " FROM btc.decisions d JOIN keys k ON d.symbol = k.symbol AND d.profile = k.profile"
    " WHERE d.\"timestamp\" >= $3::float8),"
    " g AS (SELECT symbol, profile, ts - prev AS gap, floor(prev / 3600)::bigint % 24 AS hour,"
    " count(*) OVER (PARTITION BY symbol, profile) AS total FROM d WHERE prev IS NOT NULL)"
    // tail_needed(total): total / 1000 + 2 (bigint division).
    " SELECT symbol, profile, hour::int, count(*), percentile_disc(0.99) WITHIN GROUP (ORDER BY"
    " gap), sum(gap), ((array_agg(gap ORDER BY gap DESC))[1:max(total) / 1000 + 2])::text"
    " FROM g GROUP BY symbol, profile, hour ORDER BY symbol, profile, hour";

std::size_t tail_needed(std::size_t total) { return total / 1000 + 2; }

double nearest_rank(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

std::size_t GapSummary::gaps() const {
  std::size_t n = 0;
  for (const auto& h : hours) n += h.count;
  return n;
}

double GapSummary::span_s() const {
  double s = 0;
  for (const auto& h : hours) s += h.sum_s;
  return s;
}

GapSummary summarize(std::vector<double> ts) {
  std::sort(ts.begin(), ts.end());
  std::array<std::vector<double>, 24> by_hour;
  for (std::size_t k = 1; k < ts.size(); ++k) {
    const auto hour = static_cast<std::size_t>(std::fmod(ts[k - 1], 86400) / 3600);
    by_hour[std::min<std::size_t>(hour, 23)].push_back(ts[k] - ts[k - 1]);
  }
  const std::size_t tail = tail_needed(ts.empty() ? 0 : ts.size() - 1);
  GapSummary s;
  for (std::size_t h = 0; h < 24; ++h) {
    auto& gaps = by_hour[h];
    std::sort(gaps.begin(), gaps.end());
    HourGaps& out = s.hours[h];
    out.count = gaps.size();
    out.p99_s = nearest_rank(gaps, 0.99);
    for (double g : gaps) out.sum_s += g;
    out.longest.assign(gaps.rbegin(),
                       gaps.rbegin() + static_cast<std::ptrdiff_t>(std::min(tail, gaps.size())));
  }
  return s;
}

namespace {

// The p99.9 (nearest rank) of the gaps of the hours not in `quiet`, from their longest gaps.
double p999_of(const GapSummary& s, const std::vector<int>& quiet) {
  std::size_t n = 0;
  std::vector<double> longest;
  for (std::size_t h = 0; h < 24; ++h) {
    if (std::find(quiet.begin(), quiet.end(), static_cast<int>(h)) != quiet.end()) continue;
    n += s.hours[h].count;
    longest.insert(longest.end(), s.hours[h].longest.begin(), s.hours[h].longest.end());
  }
  if (n == 0 || longest.empty()) return 0;
  std::sort(longest.begin(), longest.end(), std::greater<>());
  const auto rank = static_cast<std::size_t>(std::ceil(0.999 * static_cast<double>(n)));
  const std::size_t from_top = n - std::max<std::size_t>(rank, 1);  // 0 = the longest
  return longest[std::min(from_top, longest.size() - 1)];
}

}  // namespace

Recommendation recommend(const GapSummary& s, const ThresholdRule& rule) {
  Recommendation r;
  r.gaps = s.gaps();
  r.span_s = s.span_s();
  double lo = 0;
  double hi = 0;
  for (std::size_t h = 0; h < 24; ++h) {
    r.hourly_p99_s[h] = s.hours[h].p99_s;
    if (s.hours[h].count < rule.min_hour_gaps) continue;
    lo = lo == 0 ? s.hours[h].p99_s : std::min(lo, s.hours[h].p99_s);
    hi = std::max(hi, s.hours[h].p99_s);
  }
  r.hour_dependent = lo > 0 && hi > rule.quiet_ratio * lo;
  for (std::size_t h = 0; h < 24 && r.hour_dependent; ++h) {
    if (s.hours[h].count >= rule.min_hour_gaps && s.hours[h].p99_s > rule.quiet_ratio * lo) {
      r.quiet_hours.push_back(static_cast<int>(h));
    }
  }
  r.p999_s = p999_of(s, r.quiet_hours);
  r.enough = r.gaps >= rule.min_gaps && r.span_s >= rule.min_span_s;
  if (r.enough) r.threshold_s = std::min(rule.max_s, std::max(rule.min_s, rule.k * r.p999_s));
  return r;
}

ThresholdTable::ThresholdTable(std::vector<std::pair<std::string, std::string>> keys,
                               double fixed_s)
    : keys_(std::move(keys)),
      fixed_s_(fixed_s),
      thresholds_(keys_.size(), AgentThreshold{fixed_s, false}),
      recs_(keys_.size()) {}

std::vector<std::size_t> ThresholdTable::learn(
    const std::map<std::pair<std::string, std::string>, GapSummary>& summaries,
    const ThresholdRule& rule) {
  std::vector<std::size_t> changed;
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    auto it = summaries.find(keys_[i]);
    recs_[i] = it == summaries.end() ? std::nullopt : std::optional(recommend(it->second, rule));
    const AgentThreshold t = recs_[i] && recs_[i]->enough
                                 ? AgentThreshold{recs_[i]->threshold_s, true}
                                 : AgentThreshold{fixed_s_, false};
    if (!(t == thresholds_[i])) {
      thresholds_[i] = t;
      changed.push_back(i);
    }
  }
  return changed;
}

std::size_t ThresholdTable::learned_count() const {
  return static_cast<std::size_t>(std::count_if(thresholds_.begin(), thresholds_.end(),
                                                [](const AgentThreshold& t) { return t.learned; }));
}

std::optional<std::vector<double>> parse_float_array(const std::string& text) {
  if (text.size() < 2 || text.front() != '{' || text.back() != '}') return std::nullopt;
  std::vector<double> out;
  const std::string body = text.substr(1, text.size() - 2);
  std::size_t pos = 0;
  while (pos < body.size()) {
    const std::size_t comma = std::min(body.find(',', pos), body.size());
    const std::string item = body.substr(pos, comma - pos);
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(item.c_str(), &end);
    if (item.empty() || errno != 0 || *end != '\0' || !std::isfinite(v)) return std::nullopt;
    out.push_back(v);
    pos = comma + 1;
  }
  return out;
}

std::map<std::pair<std::string, std::string>, GapSummary> summaries_of(
    const std::vector<LearnRow>& rows) {
  std::map<std::pair<std::string, std::string>, GapSummary> out;
  for (const auto& row : rows) {
    if (row.hour < 0 || row.hour > 23) continue;
    HourGaps& h = out[{row.symbol, row.profile}].hours[static_cast<std::size_t>(row.hour)];
    h.count = row.count;
    h.p99_s = row.p99_s;
    h.sum_s = row.sum_s;
    h.longest = row.longest;
  }
  return out;
}

}  // namespace trading_heal::probe
