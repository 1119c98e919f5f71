#include "report.hpp"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>

namespace trading_heal::replay {

std::string iso(double t) {
  const std::time_t s = static_cast<std::time_t>(t);
  std::tm tm{};
  ::gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Totals totals(const Result& r) {
  Totals t;
  for (const auto& a : r.agents) {
    t.restarts += a.restarts;
    t.needless += a.needless;
    t.held += a.held;
    t.stalls += a.stalls;
    t.caught += a.caught;
    t.detection_sum += a.detection_sum_s;
  }
  return t;
}

json to_json(const Result& r, bool findings) {
  json agents = json::array();
  for (const auto& a : r.agents) {
    agents.push_back(
        {{"agent", a.agent},
         {"decisions", a.decisions},
         {"restarts", a.restarts},
         {"needless_restarts", a.needless},
         {"held", a.held},
         {"stalls", a.stalls},
         {"stalls_caught", a.caught},
         {"mean_detection_seconds",
          a.caught > 0 ? json(a.detection_sum_s / static_cast<double>(a.caught)) : json(nullptr)}});
  }
  json out = {{"from", iso(r.from)}, {"to", iso(r.to)}, {"checks", r.checks}, {"agents", agents}};
  if (findings) {
    json f = json::array();
    for (const auto& x : r.findings) {
      static const char* kinds[] = {"restart", "held", "missed_stall"};
      f.push_back({{"kind", kinds[static_cast<int>(x.kind)]},
                   {"agent", x.agent},
                   {"at", iso(x.at)},
                   {"what", x.what},
                   {"since_decision_seconds", x.since_decision},
                   {"needless", x.needless},
                   {"stall_seconds", x.stall_seconds}});
    }
    out["findings"] = f;
  }
  return out;
}

void print_table(const Result& r, bool findings) {
  std::printf("replayed %s .. %s: %llu checks\n", iso(r.from).c_str(), iso(r.to).c_str(),
              static_cast<unsigned long long>(r.checks));
  std::printf("%-24s %9s %8s %8s %6s %13s %14s\n", "agent", "decisions", "restarts", "needless",
              "held", "stalls caught", "mean detection");
  for (const auto& a : r.agents) {
    char det[32] = "-";
    if (a.caught > 0) {
      std::snprintf(det, sizeof det, "%.1f s", a.detection_sum_s / static_cast<double>(a.caught));
    }
    char caught[32];
    std::snprintf(caught, sizeof caught, "%zu/%zu", a.caught, a.stalls);
    std::printf("%-24s %9zu %8zu %8zu %6zu %13s %14s\n", a.agent.c_str(), a.decisions, a.restarts,
                a.needless, a.held, caught, det);
  }
  if (!findings) return;
  for (const auto& x : r.findings) {
    static const char* kinds[] = {"RESTART", "HELD", "MISSED"};
    std::printf("%s %-7s %-22s %s (%.0f s after its last decision)%s\n", iso(x.at).c_str(),
                kinds[static_cast<int>(x.kind)], x.agent.c_str(), x.what.c_str(), x.since_decision,
                x.needless ? " needless" : "");
  }
}

json rhythm_json(const Rhythm& r, std::size_t at_fixed) {
  return {{"agent", r.agent},
          {"gaps", r.gaps},
          {"median_s", r.median_s},
          {"p99_s", r.p99_s},
          {"p999_s", r.p999_s},
          {"max_s", r.max_s},
          {"hour_dependent", r.hour_dependent},
          {"quiet_hours_utc", r.quiet_hours},
          {"hourly_p99_s", r.hourly_p99_s},
          {"weekday_p99_s", r.weekday_p99_s},
          {"weekday_dependent", r.weekday_dependent},
          {"recommended_s", r.recommended_s > 0 ? json(r.recommended_s) : json(nullptr)},
          {"would_raise", r.would_raise},
          {"raised_at_configured", at_fixed}};
}

void print_rhythm_row(const Rhythm& r, std::size_t at_fixed) {
  char rec[32] = "-";
  if (r.recommended_s > 0) std::snprintf(rec, sizeof rec, "%.0f s", r.recommended_s);
  std::string hours = "no";
  if (r.hour_dependent) {
    hours = "quiet";
    for (int q : r.quiet_hours) hours += " " + std::to_string(q);
  }
  if (r.weekday_dependent) hours += ", by weekday too";
  std::printf("%-24s %9zu %7.1fs %7.1fs %7.1fs %8.0fs %12s %11zu %11zu  %s\n", r.agent.c_str(),
              r.gaps, r.median_s, r.p99_s, r.p999_s, r.max_s, rec, r.would_raise, at_fixed,
              hours.c_str());
}

void print_comparison(const Comparison& c, const PerAgent& per, double window, bool as_json) {
  if (as_json) {
    json out = {
        {"window_seconds", window}, {"agents", json::array()}, {"disagreements", json::array()}};
    for (const auto& [agent, n] : per) {
      out["agents"].push_back(
          {{"agent", agent}, {"agreed", n[0]}, {"only_trading_heal", n[1]}, {"only_other", n[2]}});
    }
    for (const auto& o : c.only_ours) {
      out["disagreements"].push_back(
          {{"agent", o.agent}, {"at", iso(o.at)}, {"by", "trading-heal"}});
    }
    for (const auto& t : c.only_theirs) {
      out["disagreements"].push_back({{"agent", t.agent}, {"at", iso(t.at)}, {"by", "other"}});
    }
    std::cout << out.dump(2) << "\n";
    return;
  }
  std::printf("%-24s %7s %18s %12s   (within %.0f s)\n", "agent", "agreed", "only trading-heal",
              "only other", window);
  for (const auto& [agent, n] : per) {
    std::printf("%-24s %7zu %18zu %12zu\n", agent.c_str(), n[0], n[1], n[2]);
  }
  for (const auto& o : c.only_ours) {
    std::printf("%s %-22s trading-heal would have restarted it; the other healer did not\n",
                iso(o.at).c_str(), o.agent.c_str());
  }
  for (const auto& t : c.only_theirs) {
    std::printf("%s %-22s restarted by the other healer; trading-heal would not have\n",
                iso(t.at).c_str(), t.agent.c_str());
  }
}

void print_side_by_side(const std::string& name,
                        const std::vector<std::pair<std::string, Result>>& results) {
  std::printf("%-32s %12s %9s %6s %13s %14s %7s\n", name.c_str(), "restarts/day", "needless",
              "held", "stalls caught", "mean detection", "missed");
  for (const auto& [value, r] : results) {
    const Totals t = totals(r);
    const double days = std::max((r.to - r.from) / 86400, 1e-9);
    char caught[32];
    char det[32] = "-";
    std::snprintf(caught, sizeof caught, "%zu/%zu", t.caught, t.stalls);
    if (t.caught > 0) {
      std::snprintf(det, sizeof det, "%.1f s", t.detection_sum / static_cast<double>(t.caught));
    }
    std::printf("%-32s %12.2f %9zu %6zu %13s %14s %7zu\n", value.c_str(),
                static_cast<double>(t.restarts) / days, t.needless, t.held, caught, det,
                t.stalls - t.caught);
  }
}

}  // namespace trading_heal::replay
