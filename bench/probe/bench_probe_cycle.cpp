// bench_probe_cycle: cost of trading-heal-probe's cycle on the testbed (real systemd user
// manager, real PostgreSQL). Runs K cycles of the real Prober (sd-bus batch, /proc, the fleet
// query, heartbeat files) over the configured agents and prints CPU and wall per cycle, the
// fleet query's time and the process RSS. Configuration from the environment, as the probe.
// Usage: bench_probe_cycle [CYCLES]   (run by run_bench.sh)
// Environment of the bench itself:
//   BENCH_NO_BUS=1  no D-Bus at all (PostgreSQL only: the planner, the query, heartbeat files,
//                   the verdicts; every unit unknown, no /proc reads): for a machine without the
//                   testbed's user manager. Not the probe's full cycle.
//   BENCH_PACE=1    measured cycles start one interval apart (as the probe runs them: each
//                   steady range holds the rows of one interval plus the margin) instead of back
//                   to back (the range is then about the margin alone).
// hwm_kib is the process's peak RSS over the whole run; steady_hwm_kib the peak over the
// measured cycles only (the kernel's mark reset after the warm-up through clear_refs).
#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "trading_heal/common/config.hpp"
#include "trading_heal/probe/pg_store.hpp"
#include "trading_heal/probe/prober.hpp"
#include "trading_heal/probe/systemd_bus.hpp"

namespace {

using namespace trading_heal;

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return tv(u.ru_utime) + tv(u.ru_stime);
}

long status_kib(const std::string& key) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + ":", 0) == 0) return std::stol(line.substr(key.size() + 1));
  }
  return -1;
}

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && std::strcmp(v, "1") == 0;
}

// Resets the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux >= 4.0).
void reset_hwm() { std::ofstream("/proc/self/clear_refs") << "5"; }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  ::mallopt(M_ARENA_MAX, 1);  // as trading-heal-probe's main()
  const int cycles = argc > 1 ? std::atoi(argv[1]) : 20;
  auto cfg = common::load_config(common::process_env());
  if (!cfg) {
    std::fprintf(stderr, "configuration error: %s\n", cfg.error().to_string().c_str());
    return 78;
  }
  const auto opts = probe::probe_options(*cfg);
  const bool no_bus = env_flag("BENCH_NO_BUS");
  const bool pace = env_flag("BENCH_PACE");
  std::unique_ptr<probe::SystemdBus> bus;
  if (!no_bus) {
    auto b = probe::SystemdBus::open(cfg->scope);
    if (!b) {
      std::fprintf(stderr, "%s\n", b.error().c_str());
      return 1;
    }
    bus = std::move(*b);
  }
  probe::PgStore pg(probe::pg_settings(*cfg));
  probe::Prober prober(*cfg, opts, bus.get(), &pg);
  if (bus) {
    if (auto w = bus->watch(prober.watched_units()); !w) {
      std::fprintf(stderr, "%s\n", w.error().c_str());
    }
  }
  auto property_calls = [&] { return bus ? bus->property_calls() : std::uint64_t{0}; };
  std::vector<double> cpu, wall, query;
  std::size_t healthy = 0, reports = 0;
  // Warm-up: the connection, the first cycle (existence checks), then the catch-up of keys not
  // seen in the first range (time slices, or one LATERAL probe each with the composite index).
  int warmup = 0;
  double first_query = -1, catchup_max = 0;
  std::uint64_t calls0 = 0;
  long steady_hwm = -1, warmup_hwm = -1;
  auto last_start = std::chrono::steady_clock::now();
  for (int c = 0; c < cycles + warmup + 1; ++c) {
    if (pace && c > warmup) std::this_thread::sleep_until(last_start + cfg->interval);
    if (c == warmup + 1) {  // the first measured cycle
      warmup_hwm = status_kib("VmHWM");
      reset_hwm();
    }
    const double c0 = cpu_seconds();
    const auto w0 = std::chrono::steady_clock::now();
    last_start = w0;
    const double now = common::to_epoch_seconds(std::chrono::system_clock::now());
    std::optional<probe::FleetAnswer> answer;
    if (prober.begin_cycle(now)) answer = pg.wait(w0 + std::chrono::seconds(10));
    const auto r =
        prober.finish_cycle(answer, common::to_epoch_seconds(std::chrono::system_clock::now()),
                            std::chrono::steady_clock::now());
    if (bus) bus->drain();
    const double w = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
    const double q = answer && answer->ok ? answer->seconds : -1;
    if (c == warmup) {  // still warming up: one more cycle, unless caught up
      if (c == 0) first_query = q;
      if (c > 0) catchup_max = std::max(catchup_max, q);
      if (c == 0 || (prober.planner().catching_up() > 0 && c < 100)) ++warmup;
      calls0 = property_calls();
      continue;
    }
    cpu.push_back(cpu_seconds() - c0);
    wall.push_back(w);
    query.push_back(q);
    reports = r.size();
    healthy = static_cast<std::size_t>(std::count_if(
        r.begin(), r.end(), [](auto& x) { return x.verdict == proto::Verdict::kHealthy; }));
  }
  steady_hwm = status_kib("VmHWM");
  const long whole_hwm = std::max(warmup_hwm, steady_hwm);
  const double n = static_cast<double>(std::max<std::size_t>(reports, 1));
  std::printf(
      "agents=%zu healthy=%zu cycles=%d cpu_ms_per_cycle=%.2f cpu_us_per_agent=%.1f "
      "wall_ms_per_cycle=%.2f fleet_query_ms=%.2f (max %.2f) first_query_ms=%.1f "
      "catchup_cycles=%d (max %.1f ms) prop_calls_per_cycle=%.1f rss_kib=%ld hwm_kib=%ld "
      "steady_hwm_kib=%ld bus=%s paced=%s db=%s\n",
      reports, healthy, cycles, median(cpu) * 1e3, median(cpu) * 1e6 / n, median(wall) * 1e3,
      median(query) * 1e3, *std::max_element(query.begin(), query.end()) * 1e3, first_query * 1e3,
      warmup - 1, catchup_max * 1e3,
      static_cast<double>(property_calls() - calls0) / std::max(cycles, 1), status_kib("VmRSS"),
      whole_hwm, steady_hwm, bus ? "yes" : "no", pace ? "yes" : "no",
      prober.db_reachable() ? "ok" : prober.db_error().c_str());
  return 0;
}
