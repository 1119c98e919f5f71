#include "rhythm.hpp"

#include <algorithm>
#include <cmath>

namespace trading_heal::replay {
namespace {

// The q-quantile of sorted values (nearest rank).
double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

}  // namespace

std::vector<Rhythm> rhythms(const History& history, const RhythmOptions& options) {
  std::vector<Rhythm> out;
  const auto specs = agents_of(history);
  for (std::size_t i = 0; i < history.series.size(); ++i) {
    std::vector<double> ts = history.series[i].ts;
    std::sort(ts.begin(), ts.end());
    Rhythm r;
    r.agent = specs[i].instance;
    std::vector<double> gaps;
    std::array<std::vector<double>, 24> by_hour;
    std::array<std::vector<double>, 7> by_day;
    for (std::size_t k = 1; k < ts.size(); ++k) {
      const double g = ts[k] - ts[k - 1];
      gaps.push_back(g);
      const auto hour = static_cast<std::size_t>(std::fmod(ts[k - 1], 86400) / 3600);
      by_hour[std::min<std::size_t>(hour, 23)].push_back(g);
      // 1970-01-01 was a Thursday (4).
      const auto day = static_cast<std::size_t>(std::floor(ts[k - 1] / 86400) + 4) % 7;
      by_day[day].push_back(g);
    }
    r.gaps = gaps.size();
    std::sort(gaps.begin(), gaps.end());
    r.median_s = quantile(gaps, 0.5);
    r.p99_s = quantile(gaps, 0.99);
    r.p999_s = quantile(gaps, 0.999);
    r.max_s = gaps.empty() ? 0 : gaps.back();
    double lo = 0;
    double hi = 0;
    for (std::size_t h = 0; h < 24; ++h) {
      std::sort(by_hour[h].begin(), by_hour[h].end());
      r.hourly_p99_s[h] = quantile(by_hour[h], 0.99);
      if (by_hour[h].size() < 10) continue;
      lo = lo == 0 ? r.hourly_p99_s[h] : std::min(lo, r.hourly_p99_s[h]);
      hi = std::max(hi, r.hourly_p99_s[h]);
    }
    r.hour_dependent = lo > 0 && hi > 10 * lo;
    double day_lo = 0;
    double day_hi = 0;
    for (std::size_t d = 0; d < 7; ++d) {
      std::sort(by_day[d].begin(), by_day[d].end());
      r.weekday_p99_s[d] = quantile(by_day[d], 0.99);
      if (by_day[d].size() < 10) continue;
      day_lo = day_lo == 0 ? r.weekday_p99_s[d] : std::min(day_lo, r.weekday_p99_s[d]);
      day_hi = std::max(day_hi, r.weekday_p99_s[d]);
    }
    r.weekday_dependent = day_lo > 0 && day_hi > 10 * day_lo;
    std::vector<double> active;  // the gaps of the hours that are not quiet
    for (std::size_t h = 0; h < 24; ++h) {
      const bool quiet = r.hour_dependent && by_hour[h].size() >= 10 && r.hourly_p99_s[h] > 10 * lo;
      if (quiet) {
        r.quiet_hours.push_back(static_cast<int>(h));
      } else {
        active.insert(active.end(), by_hour[h].begin(), by_hour[h].end());
      }
    }
    std::sort(active.begin(), active.end());
    if (r.gaps >= options.min_gaps) {
      r.recommended_s = std::max(options.floor_s, options.k * quantile(active, 0.999));
      r.would_raise = static_cast<std::size_t>(
          gaps.end() - std::upper_bound(gaps.begin(), gaps.end(), r.recommended_s));
    }
    out.push_back(r);
  }
  return out;
}

}  // namespace trading_heal::replay
