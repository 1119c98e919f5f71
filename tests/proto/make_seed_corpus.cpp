// Writes one valid message of every kind into DIR, the fuzzer's seed corpus.
#include <fstream>
#include <iostream>
#include <string>

#include "trading_heal/proto/codec.hpp"

int main(int argc, char** argv) {
  using namespace trading_heal::proto;
  if (argc != 2) {
    std::cerr << "usage: proto_seed_corpus DIR\n";
    return 64;
  }
  HealthReport h;
  h.agent = "BTC_USDT";
  h.unit = "crypto-agent@BTC_USDT.service";
  h.symbol = "BTC-USDT";
  h.profile = "default";
  h.verdict = Verdict::kStalled;
  h.consecutive_failures = 2;
  h.decision_age_seconds = 1500;
  h.age_source = AgeSource::kDb;
  h.stall_threshold_seconds = 300;
  h.threshold_source = ThresholdSource::kLearned;
  Heartbeat hb{"probe", 42, 30, {{"db_reachable", true}, {"cycle_seconds", 0.012}}};
  Diagnosis d;
  d.agent = "BTC_USDT";
  d.cause = "DB lock on decisions table";
  Event e;
  e.action = "restart";
  e.agent = "BTC_USDT";
  e.fields = {{"dry_run", false}, {"age_seconds", std::int64_t{1500}}};
  Command c{CommandVerb::kPause, "BTC_USDT", "maintenance", 1.8e9, "r1"};
  Ack a{"actuator", "boot", 7, true, ""};
  const Body bodies[] = {h, hb, d, e, c, a};
  int i = 0;
  for (const auto& b : bodies) {
    std::ofstream(std::string(argv[1]) + "/seed-" + std::to_string(i) + ".msgpack",
                  std::ios::binary)
        << encode(make_message("test", "boot-1", static_cast<std::uint64_t>(i), 1.8e9, b));
    ++i;
  }
  return 0;
}
