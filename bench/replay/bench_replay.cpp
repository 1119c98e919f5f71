// Replay speed and the what-if on a generated month (issue 20): a month of the six-agent fleet,
// a day of 1000 agents; then the month under stall thresholds 300, 600 and 900 s side by side.
// Figures, not pass/fail. Usage: bench_replay [--csv FILE] (also writes the month as CSV).
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "generate.hpp"
#include "replay.hpp"

namespace {

using namespace trading_heal;

common::Config config(double threshold_s) {
  return *common::load_config([&](const std::string& n) -> std::optional<std::string> {
    if (n == "TRADING_HEAL_STALL_THRESHOLD") return std::to_string(threshold_s);
    return std::nullopt;
  });
}

replay::Result timed(const char* what, const replay::History& h, const common::Config& cfg) {
  std::size_t decisions = 0;
  for (const auto& s : h.series) decisions += s.ts.size();
  const auto t0 = std::chrono::steady_clock::now();
  auto r = replay::run(h, cfg);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%-34s %6zu agents %10zu decisions %10llu checks  %7.3f s  %12.0f checks/s\n", what,
              h.series.size(), decisions, static_cast<unsigned long long>(r.checks), s,
              static_cast<double>(r.checks) / s);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  constexpr double kStart = 1780000000;
  const auto month = replay::six_agents({.start = kStart, .days = 30, .seed = 7});
  if (argc == 3 && std::string(argv[1]) == "--csv") {
    std::ofstream out(argv[2]);
    out << "timestamp,symbol,profile\n";
    out.precision(15);
    for (const auto& s : month.history.series) {
      for (double t : s.ts) out << t << ',' << s.symbol << ',' << s.profile << '\n';
    }
  }
  std::printf("== replay speed (interval 30 s, threshold 600 s)\n");
  timed("a month, six agents", month.history, config(600));
  timed("a day, 1000 agents every 5 s",
        replay::uniform({.start = kStart, .days = 1, .seed = 1}, 1000).history, config(600));

  std::size_t planted = 0;
  for (const auto& p : month.planted) planted += p.kind == "stall" ? 1 : 0;
  std::printf(
      "\n== what-if on the month: %zu planted stalls (15 min - 3 h), %zu restarts (1-2.5 min "
      "gaps), %zu database outages; one agent pauses nightly (8 h gaps), one decides in "
      "bursts\n",
      planted, month.planted.size() - planted, month.history.db_outages.size());
  std::printf("%-10s %13s %9s %6s %14s %15s %7s\n", "threshold", "restarts/day", "needless", "held",
              "stalls caught", "mean detection", "missed");
  for (double threshold : {300.0, 600.0, 900.0}) {
    const auto r = replay::run(month.history, config(threshold));
    std::size_t restarts = 0, needless = 0, held = 0, stalls = 0, caught = 0;
    double detection = 0;
    for (const auto& a : r.agents) {
      restarts += a.restarts;
      needless += a.needless;
      held += a.held;
      stalls += a.stalls;
      caught += a.caught;
      detection += a.detection_sum_s;
    }
    std::printf("%-10.0f %13.2f %9zu %6zu %8zu/%-5zu %13.1f s %7zu\n", threshold,
                static_cast<double>(restarts) / 30.0, needless, held, caught, stalls,
                caught > 0 ? detection / static_cast<double>(caught) : 0.0, stalls - caught);
  }
  return 0;
}
