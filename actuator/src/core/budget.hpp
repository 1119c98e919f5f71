// The restart budget: the sliding window per agent and for the fleet, the cooldown, the backoff
// after ineffective restarts (with jitter), and exhaustion. Pure functions of the model.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>

#include "trading_heal/actuator/model.hpp"

namespace trading_heal::actuator::budget {

int in_window(const Policy& p, const AgentState& a, MonoTime now);
int fleet_in_window(const Model& m, MonoTime now);
// Drops the restarts that left the window.
void prune(const Policy& p, AgentState& a, MonoTime now);

// What blocks a restart now: "max_restarts", "fleet_max_restarts", "backoff" or "cooldown",
// and when it lifts (none: never, as with max_restarts=0).
struct Block {
  std::string limit;
  std::optional<MonoTime> until;
};
std::optional<Block> blocked(const Model& m, const AgentState& a, MonoTime now);

// Restarts did not help: enough failures since the last resume, and a restart this incident or
// this window (failures counted before any restart are not failed restarts).
bool exhausted(const Policy& p, const AgentState& a, MonoTime now);
// The failures counted beyond the confirmation: forgiven when they were not ours to count.
std::uint32_t past_confirmation(const Policy& p, const AgentState& a);

void record(AgentState& a, MonoTime now);  // a restart issued now
void refund(AgentState& a);                // the last one never happened (deferred)
// One more restart that did not help: the wait doubles (capped, lengthened by jitter).
void back_off(const Policy& p, AgentState& a, std::mt19937_64& rng);
bool stable(const Policy& p, const AgentState& a, MonoTime now);  // healthy long enough
void forget_backoff(AgentState& a);

}  // namespace trading_heal::actuator::budget
