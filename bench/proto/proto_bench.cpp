// Encode + decode of a HealthReport (the most frequent message): messages per second.
#include <benchmark/benchmark.h>

#include "trading_heal/proto/codec.hpp"

namespace {

using namespace trading_heal::proto;

Message health() {
  HealthReport h;
  h.agent = "BTC_USDT";
  h.unit = "crypto-agent@BTC_USDT.service";
  h.symbol = "BTC-USDT";
  h.profile = "default";
  h.verdict = Verdict::kHealthy;
  h.decision_age_seconds = 4.2;
  h.age_source = AgeSource::kDb;
  h.heartbeat_age_seconds = 3.9;
  h.active_state = "active";
  h.sub_state = "running";
  h.result = "success";
  h.main_pid = 4242;
  h.rss_bytes = 150 << 20;
  h.cpu_ratio = 0.12;
  h.n_restarts = 1;
  h.active_enter_ts = 1785000000.0;
  h.unit_ok = h.process_ok = h.age_ok = true;
  h.detail = "ok";
  return make_message("probe", "0123456789abcdef0123456789abcdef", 1, 1785000000.0, h);
}

void BM_EncodeDecodeHealth(benchmark::State& state) {
  const Message m = health();
  std::size_t bytes = 0;
  for (auto _ : state) {
    std::string wire = encode(m);
    auto back = decode(wire);
    benchmark::DoNotOptimize(back);
    bytes += wire.size();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.counters["wire_bytes"] = static_cast<double>(encode(m).size());
}
BENCHMARK(BM_EncodeDecodeHealth);

void BM_Encode(benchmark::State& state) {
  const Message m = health();
  for (auto _ : state) benchmark::DoNotOptimize(encode(m));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Encode);

void BM_Decode(benchmark::State& state) {
  const std::string wire = encode(health());
  for (auto _ : state) benchmark::DoNotOptimize(decode(wire));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Decode);

void BM_RejectGarbage(benchmark::State& state) {
  const std::string garbage("\xdd\xff\xff\xff\xff", 5);
  for (auto _ : state) benchmark::DoNotOptimize(decode(garbage));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RejectGarbage);

}  // namespace

BENCHMARK_MAIN();
