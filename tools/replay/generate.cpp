#include "generate.hpp"

#include <algorithm>
#include <cmath>
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

}  // namespace

Generated six_agents(double start, int days, std::uint64_t seed) {
  const std::vector<Cadence> fleet = {{"BTC-USDT", "default", 5},
                                      {"ETH-USDT", "default", 5},
                                      {"XRP-USDT", "default", 15},
                                      {"SOL-USDT", "default", 60, true},
                                      {"DOGE-USDT", "default", 120, false, true},
                                      {"BTC-USDT", "conservative", 30}};
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  Generated g;
  const double end = start + days * kDay;
  // Database outages: the agents cannot write either (their inserts fail).
  for (double t = start + kDay; t < end; t += kDay * (3 + 4 * u(rng))) {
    const double len = 300 + 900 * u(rng);
    g.history.db_outages.emplace_back(t, t + len);
  }
  for (const auto& c : fleet) {
    // This agent's faults: stalls (15 min - 3 h) about every two days, restarts about daily.
    std::vector<Planted> faults;
    for (double t = start + kDay * u(rng); t < end - 4 * 3600; t += kDay * (1 + 2 * u(rng))) {
      const double len = 900 + (3 * 3600 - 900) * u(rng) * u(rng);
      faults.push_back({c.symbol, c.profile, t, t + len, "stall"});
    }
    for (double t = start + kDay * u(rng); t < end - 3600; t += kDay * (0.5 + u(rng))) {
      faults.push_back({c.symbol, c.profile, t, t + 60 + 90 * u(rng), "restart"});
    }
    std::sort(faults.begin(), faults.end(),
              [](const Planted& a, const Planted& b) { return a.from < b.from; });
    Series s{c.symbol, c.profile, {}};
    std::size_t f = 0;
    double t = start + c.period * u(rng);
    int burst_left = 0;
    while (t < end) {
      // Inside a fault or an outage: jump to its end (the first decision after it).
      if (f < faults.size() && t >= faults[f].from) {
        t = std::max(t, faults[f].to);
        ++f;
        continue;
      }
      bool blocked = false;
      for (const auto& o : g.history.db_outages) {
        if (t >= o.first && t < o.second) {
          t = o.second + c.period * u(rng);
          blocked = true;
          break;
        }
      }
      if (blocked) continue;
      const double tod = std::fmod(t, kDay);
      if (c.nightly && tod >= 22 * 3600) {  // quiet until 06:00
        t += kDay - tod + 6 * 3600;
        continue;
      }
      if (c.nightly && tod < 6 * 3600) {
        t += 6 * 3600 - tod;
        continue;
      }
      s.ts.push_back(t);
      if (c.bursts && burst_left > 0) {  // a burst: decisions a second apart
        --burst_left;
        t += 1;
      } else if (c.bursts) {
        burst_left = 4 + static_cast<int>(16 * u(rng));
        t += c.period * (0.5 + u(rng));
      } else {
        t += c.period * (0.9 + 0.2 * u(rng));
      }
    }
    for (auto& p : faults) {
      // The recorded gap: from the last decision before the fault to the first after it.
      auto it = std::lower_bound(s.ts.begin(), s.ts.end(), p.from);
      p.from = it == s.ts.begin() ? p.from : *std::prev(it);
      auto after = std::lower_bound(s.ts.begin(), s.ts.end(), p.to);
      p.to = after == s.ts.end() ? end : *after;
    }
    g.planted.insert(g.planted.end(), faults.begin(), faults.end());
    g.history.series.push_back(std::move(s));
  }
  g.history.from = start;
  g.history.to = end;
  return g;
}

Generated uniform(double start, int agents, double days, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  Generated g;
  const double end = start + days * kDay;
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
