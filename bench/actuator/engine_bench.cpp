// From a HealthReport frame received to the restart call issued, systemd excluded (goal < 1 ms):
// decode + Engine::on_health (the decision) and the hand-off to the restart worker thread.
// Also reports the process's peak RSS.
#include <benchmark/benchmark.h>
#include <poll.h>
#include <sys/resource.h>

#include "trading_heal/actuator/engine.hpp"
#include "trading_heal/actuator/worker.hpp"
#include "trading_heal/proto/codec.hpp"

namespace {

using namespace trading_heal;
using namespace std::chrono_literals;

std::vector<common::AgentSpec> agents(int n) {
  std::vector<common::AgentSpec> out;
  for (int i = 0; i < n; ++i) {
    common::AgentSpec a;
    a.instance = "A" + std::to_string(i) + "_USDT";
    a.unit = common::unit_for(a.instance);
    a.symbol = "A" + std::to_string(i) + "-USDT";
    a.profile = "default";
    out.push_back(a);
  }
  return out;
}

actuator::Policy fast_policy() {
  actuator::Policy p;
  p.consecutive_threshold = 1;
  p.exhausted_after = 1 << 30;
  p.max_restarts = 1 << 30;
  p.fleet_max_restarts = 1 << 30;
  p.window = 10s;
  p.cooldown = 0ms;
  p.diagnosis_wait = 0ms;
  p.global_min_agents = 1 << 30;
  return p;
}

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

std::string frame(const std::string& agent, proto::Verdict v) {
  proto::HealthReport r;
  r.agent = agent;
  r.unit = common::unit_for(agent);
  r.verdict = v;
  r.consecutive_failures = 2;
  r.decision_age_seconds = 1500;
  r.active_state = "active";
  r.sub_state = "running";
  return proto::encode(proto::make_message("probe", "b", 1, 0, r));
}

// One incident per iteration: failing frame -> decode -> restart decision (what is measured
// as the latency), plus the restart result and a healthy frame that close it again.
void BM_FrameToRestartDecision(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  actuator::Engine engine(agents(n), fast_policy());
  const std::string agent = "A0_USDT";
  const std::string bad = frame(agent, proto::Verdict::kStalled);
  const std::string good = frame(agent, proto::Verdict::kHealthy);
  actuator::Now now{common::MonoTime(1000h), common::WallTime(std::chrono::seconds(1785000000))};
  std::size_t decisions = 0;
  for (auto _ : state) {
    now.mono += 1s;
    now.wall += 1s;
    auto msg = proto::decode(bad);
    auto ds = engine.on_health(std::get<proto::HealthReport>(msg->body), now);
    decisions += ds.size();
    benchmark::DoNotOptimize(ds);
    actuator::RestartResult r;
    r.agent = agent;
    engine.on_restart_result(r, now);
    auto ok = proto::decode(good);
    engine.on_health(std::get<proto::HealthReport>(ok->body), now);
  }
  if (decisions != static_cast<std::size_t>(state.iterations())) state.SkipWithError("no restart");
  state.counters["peak_rss_MiB"] = peak_rss_mib();
}
BENCHMARK(BM_FrameToRestartDecision)->Arg(6)->Arg(100);

class InstantUnits final : public actuator::UnitManager {
 public:
  tl::expected<actuator::UnitStatus, std::string> status(const std::string&) override {
    return actuator::UnitStatus{"active", "running", "success", pid_};
  }
  tl::expected<void, std::string> restart(const std::string&, std::chrono::milliseconds) override {
    ++pid_;
    return {};
  }
  tl::expected<void, std::string> reset_failed(const std::string&) override { return {}; }
  std::string name() const override { return "instant"; }

 private:
  std::uint32_t pid_ = 1;
};

// Loop thread -> worker thread -> (instant systemd) -> result back on the eventfd.
void BM_WorkerRoundTrip(benchmark::State& state) {
  actuator::RestartWorker worker([] {
    return tl::expected<std::unique_ptr<actuator::Restarter>, std::string>(
        std::make_unique<actuator::Restarter>(std::make_unique<InstantUnits>(),
                                              actuator::RestartOptions{}));
  });
  actuator::RestartDecision d;
  d.agent = "A0_USDT";
  d.unit = common::unit_for(d.agent);
  for (auto _ : state) {
    worker.submit(d);
    pollfd p{worker.fd(), POLLIN, 0};
    std::size_t got = 0;
    while (got == 0) {
      ::poll(&p, 1, 1000);
      got = worker.take_results().size();
    }
  }
  state.counters["peak_rss_MiB"] = peak_rss_mib();
}
BENCHMARK(BM_WorkerRoundTrip)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
