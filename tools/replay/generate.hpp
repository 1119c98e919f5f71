// A fleet's history for tests and benchmarks: six agents with the cadences real agents have
// (one every 5 s; one every 60 s that pauses every night; one in bursts), planted stalls of
// several lengths, database outages and restarts, from a seed. Or N agents writing every 5 s.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "replay.hpp"

namespace trading_heal::replay {

struct Planted {
  std::string symbol;
  std::string profile;
  double from = 0;   // the last decision before the stall
  double to = 0;     // the first decision after it
  std::string kind;  // stall | restart (a short gap: the agent restarted, bootstrapping)
};

struct Generated {
  History history;
  std::vector<Planted> planted;
};

// What a generated history spans, and the seed of its randomness.
struct Span {
  double start = 0;  // epoch seconds
  double days = 1;
  std::uint64_t seed = 1;
};
// The six-agent fleet over `span`: stalls of 15 min to 3 h about every two days per agent, a
// database outage of 5-20 min about every five days, restarts (a 60-150 s gap) about daily.
Generated six_agents(Span span);
// `agents` agents each deciding every 5 s (jittered) over `span`, no faults.
Generated uniform(Span span, int agents);

}  // namespace trading_heal::replay
