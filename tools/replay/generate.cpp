#include "generate.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>

namespace trading_heal::replay {
namespace {

constexpr double kDay = 86400;

struct Cadence {
  std::string symbol;
  std::string profile;
  double period;         // seconds between decisions
  bool nightly = false;  // no decisions 22:00-06:00 UTC
  bool bursts = false;   // decisions come in bursts of 5-20 a second apart, then quiet
};

struct Random {
  std::mt19937_64 rng;
  std::uniform_real_distribution<double> dist{0, 1};
  double operator()() { return dist(rng); }
};

// One agent's faults: stalls (15 min - 3 h) about every two days, restarts about daily.
std::vector<Planted> faults_for(const Cadence& c, double start, double end, Random& u) {
  std::vector<Planted> faults;
  for (double t = start + kDay * u(); t < end - 4 * 3600; t += kDay * (1 + 2 * u())) {
    const double len = 900 + (3 * 3600 - 900) * u() * u();
    faults.push_back({c.symbol, c.profile, t, t + len, "stall"});
  }
  for (double t = start + kDay * u(); t < end - 3600; t += kDay * (0.5 + u())) {
    faults.push_back({c.symbol, c.profile, t, t + 60 + 90 * u(), "restart"});
  }
  std::sort(faults.begin(), faults.end(),
            [](const Planted& a, const Planted& b) { return a.from < b.from; });
  return faults;
}

// When `t` falls in the next fault, an outage or a nightly pause: the time to go on from.
std::optional<double> skipped(double t, const Cadence& c, const std::vector<Planted>& faults,
                              std::size_t& f, const History& h, Random& u) {
  if (f < faults.size() && t >= faults[f].from) return std::max(t, faults[f++].to);
  for (const auto& o : h.db_outages) {
    if (t >= o.first && t < o.second) return o.second + c.period * u();
  }
  const double tod = std::fmod(t, kDay);
  if (c.nightly && tod >= 22 * 3600) return t + kDay - tod + 6 * 3600;  // quiet until 06:00
  if (c.nightly && tod < 6 * 3600) return t + 6 * 3600 - tod;
  return std::nullopt;
}

Series decisions_for(const Cadence& c, const std::vector<Planted>& faults, const History& h,
                     double start, double end, Random& u) {
  Series s{c.symbol, c.profile, {}};
  std::size_t f = 0;
  double t = start + c.period * u();
  int burst_left = 0;
  while (t < end) {
    if (auto next = skipped(t, c, faults, f, h, u)) {
      t = *next;
      continue;
    }
    s.ts.push_back(t);
    if (c.bursts && burst_left > 0) {  // a burst: decisions a second apart
      --burst_left;
      t += 1;
    } else if (c.bursts) {
      burst_left = 4 + static_cast<int>(16 * u());
      t += c.period * (0.5 + u());
    } else {
      t += c.period * (0.9 + 0.2 * u());
    }
  }
  return s;
}

// The recorded gaps: from the last decision before each fault to the first after it.
void record_gaps(const Series& s, std::vector<Planted>& faults, double end) {
  for (auto& p : faults) {
    auto it = std::lower_bound(s.ts.begin(), s.ts.end(), p.from);
    p.from = it == s.ts.begin() ? p.from : *std::prev(it);
    auto after = std::lower_bound(s.ts.begin(), s.ts.end(), p.to);
    p.to = after == s.ts.end() ? end : *after;
  }
}

}  // namespace

Generated six_agents(Span span) {
  const double start = span.start;
  const std::vector<Cadence> fleet = {{"BTC-USDT", "default", 5},
                                      {"ETH-USDT", "default", 5},
                                      {"XRP-USDT", "default", 15},
                                      {"SOL-USDT", "default", 60, true},
                                      {"DOGE-USDT", "default", 120, false, true},
                                      {"BTC-USDT", "conservative", 30}};
  Random u{std::mt19937_64(span.seed)};
  Generated g;
  const double end = start + span.days * kDay;
  // Database outages: the agents cannot write either (their inserts fail).
  for (double t = start + kDay; t < end; t += kDay * (3 + 4 * u())) {
    const double len = 300 + 900 * u();
    g.history.db_outages.emplace_back(t, t + len);
  }
  for (const auto& c : fleet) {
    auto faults = faults_for(c, start, end, u);
    Series s = decisions_for(c, faults, g.history, start, end, u);
    record_gaps(s, faults, end);
    g.planted.insert(g.planted.end(), faults.begin(), faults.end());
    g.history.series.push_back(std::move(s));
  }
  g.history.from = start;
  g.history.to = end;
  return g;
}

Generated uniform(Span span, int agents) {
  const double start = span.start;
  std::mt19937_64 rng(span.seed);
  std::uniform_real_distribution<double> u(0, 1);
  Generated g;
  const double end = start + span.days * kDay;
  for (int i = 0; i < agents; ++i) {
    char sym[32];
    std::snprintf(sym, sizeof sym, "BENCH%04d-USDT", i);
    Series s{sym, "default", {}};
    for (double t = start + 5 * u(rng); t < end; t += 4.5 + u(rng)) s.ts.push_back(t);
    g.history.series.push_back(std::move(s));
  }
  g.history.from = start;
  g.history.to = end;
  return g;
}

}  // namespace trading_heal::replay
