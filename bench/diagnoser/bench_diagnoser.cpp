// The diagnosis pipeline without the LLM: journal read + redaction + rules (+ fingerprint and
// prompt) for 50 lines. Goal: < 5 ms. The journal part needs a running journal (the testbed);
// without one it reads whatever the local journal has for the unit.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "bed/agent_sim/fake_secrets.hpp"
#include "trading_heal/diagnoser/journal.hpp"
#include "trading_heal/diagnoser/pipeline.hpp"
#include "trading_heal/diagnoser/redact.hpp"
#include "trading_heal/diagnoser/rules.hpp"

namespace {

using namespace trading_heal::diagnoser;

std::vector<std::string> sample_lines() {
  const std::vector<std::string> kinds = {
      "2026-07-16T15:40:11Z crypto-agent-BTC_USDT[4242]: ⚠️ Price unavailable (timeout)",
      "2026-07-16T15:40:11Z crypto-agent-BTC_USDT[4242]: ❌ Loop error: "
      "psycopg2.OperationalError: canceling statement due to lock timeout",
      "2026-07-16T15:40:12Z crypto-agent-BTC_USDT[4242]: 📊 Cycle 1234 | $64,733.10 | No "
      "position | PnL: $0.00 | RAG: RANGING (62%)",
      // The testbed's fake credentials, so redaction has real work to do.
      std::string("2026-07-16T15:40:12Z crypto-agent-BTC_USDT[4242]: 🔌 Reconnecting to ") +
          trading_heal::agent_sim::kLeakDsn,
      std::string("2026-07-16T15:40:13Z crypto-agent-BTC_USDT[4242]: KuCoin client: ") +
          "KUCOIN_API_KEY=" + trading_heal::agent_sim::kLeakKucoinApiKey +
          " api_secret=" + trading_heal::agent_sim::kLeakApiSecret +
          " passphrase=" + trading_heal::agent_sim::kLeakPassphrase};
  std::vector<std::string> out;
  for (int i = 0; i < 50; ++i) out.push_back(kinds[static_cast<std::size_t>(i) % kinds.size()]);
  return out;
}

IncidentContext context() {
  IncidentContext c;
  c.agent = "BTC_USDT";
  c.unit = "crypto-agent@BTC_USDT.service";
  c.symbol = "BTC-USDT";
  c.verdict = trading_heal::proto::Verdict::kStalled;
  c.decision_age_seconds = 700;
  return c;
}

void BM_RedactRules50(benchmark::State& state) {
  const auto lines = sample_lines();
  for (auto _ : state) {
    auto red = redact_lines(lines);
    auto m = classify(red, {trading_heal::proto::Verdict::kStalled, 700.0});
    benchmark::DoNotOptimize(m);
  }
}
BENCHMARK(BM_RedactRules50)->Unit(benchmark::kMicrosecond);

void BM_Prepare50(benchmark::State& state) {
  const auto lines = sample_lines();
  const auto ctx = context();
  for (auto _ : state) benchmark::DoNotOptimize(prepare(ctx, lines));
}
BENCHMARK(BM_Prepare50)->Unit(benchmark::kMicrosecond);

void BM_JournalRead50(benchmark::State& state) {
  const char* scope = std::getenv("TRADING_HEAL_SYSTEMD_SCOPE");
  const auto s = scope != nullptr && std::string(scope) == "user"
                     ? trading_heal::common::SystemdScope::kUser
                     : trading_heal::common::SystemdScope::kSystem;
  std::size_t n = 0;
  for (auto _ : state) {
    auto r = read_unit_journal("crypto-agent@BTC_USDT.service", s, 50);
    n = r ? r->size() : 0;
    benchmark::DoNotOptimize(r);
  }
  state.counters["lines"] = static_cast<double>(n);
}
BENCHMARK(BM_JournalRead50)->Unit(benchmark::kMillisecond);

void BM_JournalReadPrepare50(benchmark::State& state) {
  const auto ctx = context();
  for (auto _ : state) {
    auto r = read_unit_journal(ctx.unit, trading_heal::common::SystemdScope::kUser, 50);
    benchmark::DoNotOptimize(prepare(ctx, r ? *r : std::vector<std::string>{}));
  }
}
BENCHMARK(BM_JournalReadPrepare50)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
