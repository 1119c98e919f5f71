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

// Each bucket's p99 into `p99`; the smallest and largest p99 of the buckets with 10 gaps or more.
template <std::size_t N>
std::pair<double, double> p99_by_bucket(std::array<std::vector<double>, N>& buckets,
                                        std::array<double, N>& p99) {
  double lo = 0;
  double hi = 0;
  for (std::size_t b = 0; b < N; ++b) {
    std::sort(buckets[b].begin(), buckets[b].end());
    p99[b] = quantile(buckets[b], 0.99);
    if (buckets[b].size() < 10) continue;
    lo = lo == 0 ? p99[b] : std::min(lo, p99[b]);
    hi = std::max(hi, p99[b]);
  }
  return {lo, hi};
}

Rhythm rhythm_of(const std::string& agent, std::vector<double> ts, const RhythmOptions& options) {
  std::sort(ts.begin(), ts.end());
  Rhythm r;
  r.agent = agent;
  std::vector<double> gaps;
  std::array<std::vector<double>, 24> by_hour;
  std::array<std::vector<double>, 7> by_day;
  for (std::size_t k = 1; k < ts.size(); ++k) {
    const double g = ts[k] - ts[k - 1];
    gaps.push_back(g);
    const auto hour = static_cast<std::size_t>(std::fmod(ts[k - 1], 86400) / 3600);
    by_hour[std::min<std::size_t>(hour, 23)].push_back(g);
    // 1970-01-01 was a Thursday (4).
    by_day[static_cast<std::size_t>(std::floor(ts[k - 1] / 86400) + 4) % 7].push_back(g);
  }
  r.gaps = gaps.size();
  std::sort(gaps.begin(), gaps.end());
  r.median_s = quantile(gaps, 0.5);
  r.p99_s = quantile(gaps, 0.99);
  r.p999_s = quantile(gaps, 0.999);
  r.max_s = gaps.empty() ? 0 : gaps.back();
  const auto [lo, hi] = p99_by_bucket(by_hour, r.hourly_p99_s);
  r.hour_dependent = lo > 0 && hi > 10 * lo;
  const auto [day_lo, day_hi] = p99_by_bucket(by_day, r.weekday_p99_s);
  r.weekday_dependent = day_lo > 0 && day_hi > 10 * day_lo;
  std::vector<double> active;  // the gaps of the hours that are not quiet
  for (std::size_t h = 0; h < 24; ++h) {
    if (r.hour_dependent && by_hour[h].size() >= 10 && r.hourly_p99_s[h] > 10 * lo) {
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
