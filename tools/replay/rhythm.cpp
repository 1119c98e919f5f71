#include "rhythm.hpp"

#include <algorithm>
#include <cmath>

namespace trading_heal::replay {
namespace {

using probe::nearest_rank;

Rhythm rhythm_of(const std::string& agent, std::vector<double> ts, const RhythmOptions& options) {
  std::sort(ts.begin(), ts.end());
  Rhythm r;
  r.agent = agent;
  std::vector<double> gaps;
  std::array<std::vector<double>, 7> by_day;
  for (std::size_t k = 1; k < ts.size(); ++k) {
    const double g = ts[k] - ts[k - 1];
    gaps.push_back(g);
    // 1970-01-01 was a Thursday (4).
    by_day[static_cast<std::size_t>(std::floor(ts[k - 1] / 86400) + 4) % 7].push_back(g);
  }
  r.gaps = gaps.size();
  std::sort(gaps.begin(), gaps.end());
  r.median_s = nearest_rank(gaps, 0.5);
  r.p99_s = nearest_rank(gaps, 0.99);
  r.p999_s = nearest_rank(gaps, 0.999);
  r.max_s = gaps.empty() ? 0 : gaps.back();
  // The hours and the recommendation: the probe's rule, on the same summary its query makes.
  const probe::Recommendation rec = probe::recommend(probe::summarize(ts), options);
  r.hourly_p99_s = rec.hourly_p99_s;
  r.hour_dependent = rec.hour_dependent;
  r.quiet_hours = rec.quiet_hours;
  // By day of the week: shown, not part of the rule.
  double day_lo = 0;
  double day_hi = 0;
  for (std::size_t d = 0; d < 7; ++d) {
    std::sort(by_day[d].begin(), by_day[d].end());
    r.weekday_p99_s[d] = nearest_rank(by_day[d], 0.99);
    if (by_day[d].size() < options.min_hour_gaps) continue;
    day_lo = day_lo == 0 ? r.weekday_p99_s[d] : std::min(day_lo, r.weekday_p99_s[d]);
    day_hi = std::max(day_hi, r.weekday_p99_s[d]);
  }
  r.weekday_dependent = day_lo > 0 && day_hi > options.quiet_ratio * day_lo;
  if (rec.enough) {
    r.recommended_s = rec.threshold_s;
    r.would_raise = static_cast<std::size_t>(
        gaps.end() - std::upper_bound(gaps.begin(), gaps.end(), r.recommended_s));
  }
  return r;
}

}  // namespace

std::vector<Rhythm> rhythms(const History& history, const RhythmOptions& options) {
  std::vector<Rhythm> out;
  const auto specs = agents_of(history);
  for (std::size_t i = 0; i < history.series.size(); ++i) {
    out.push_back(rhythm_of(specs[i].instance, history.series[i].ts, options));
  }
  return out;
}

}  // namespace trading_heal::replay
