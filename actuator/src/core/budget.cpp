// The restart budget (budget.hpp): sliding windows, cooldown, backoff, exhaustion.
#include "budget.hpp"

#include <algorithm>
#include <cmath>

namespace trading_heal::actuator::budget {

using std::chrono::milliseconds;

int in_window(const Policy& p, const AgentState& a, MonoTime now) {
  return static_cast<int>(std::count_if(a.restarts.begin(), a.restarts.end(),
                                        [&](MonoTime t) { return now - t < p.window; }));
}

int fleet_in_window(const Model& m, MonoTime now) {
  int n = 0;
  for (const auto& a : m.agents) n += in_window(m.policy, a, now);
  return n;
}

void prune(const Policy& p, AgentState& a, MonoTime now) {
  while (!a.restarts.empty() && now - a.restarts.front() >= p.window) a.restarts.pop_front();
}

namespace {

// The oldest restart of `a` still in the window (the restarts are in time order).
std::optional<MonoTime> oldest_in_window(const Policy& p, const AgentState& a, MonoTime now) {
  for (auto t : a.restarts) {
    if (now - t < p.window) return t;
  }
  return std::nullopt;
}

}  // namespace

std::optional<Block> blocked(const Model& m, const AgentState& a, MonoTime now) {
  const Policy& p = m.policy;
  if (in_window(p, a, now) >= p.max_restarts) {
    auto oldest = oldest_in_window(p, a, now);
    return Block{"max_restarts",
                 oldest ? std::optional<MonoTime>(*oldest + p.window) : std::nullopt};
  }
  if (fleet_in_window(m, now) >= p.fleet_max_restarts) {
    std::optional<MonoTime> oldest;
    for (const auto& o : m.agents) {
      auto t = oldest_in_window(p, o, now);
      if (t && (!oldest || *t < *oldest)) oldest = t;
    }
    return Block{"fleet_max_restarts",
                 oldest ? std::optional<MonoTime>(*oldest + p.window) : std::nullopt};
  }
  if (a.last_restart) {
    const auto wait = std::max<milliseconds>(p.cooldown, a.backoff_wait);
    if (now < *a.last_restart + wait) {
      return Block{a.backoff_wait > p.cooldown ? "backoff" : "cooldown", *a.last_restart + wait};
    }
  }
  return std::nullopt;
}

bool exhausted(const Policy& p, const AgentState& a, MonoTime now) {
  return static_cast<int>(a.consecutive - std::min(a.consecutive, a.exhaust_base)) >=
             p.exhausted_after &&
         (a.restarted_in_incident || in_window(p, a, now) > 0);
}

std::uint32_t past_confirmation(const Policy& p, const AgentState& a) {
  return a.consecutive - std::min<std::uint32_t>(
                             a.consecutive, static_cast<std::uint32_t>(p.consecutive_threshold));
}

void record(AgentState& a, MonoTime now) {
  a.prev_last_restart = a.last_restart;
  a.last_restart = now;
  a.restarts.push_back(now);
}

void refund(AgentState& a) {
  if (!a.restarts.empty()) a.restarts.pop_back();
  a.last_restart = a.prev_last_restart;
}

void back_off(const Policy& p, AgentState& a, std::mt19937_64& rng) {
  a.backoff_level = std::min(a.backoff_level + 1, 30);
  // cooldown * 2^level, capped, lengthened by jitter so that agents do not move in step.
  const double base =
      std::min<double>(static_cast<double>(p.cooldown.count()) * std::ldexp(1.0, a.backoff_level),
                       static_cast<double>(p.backoff_max.count()));
  std::uniform_real_distribution<double> u(0.0, p.jitter);
  const double wait =
      std::min(base * (1.0 + u(rng)), std::max(static_cast<double>(p.backoff_max.count()),
                                               static_cast<double>(p.cooldown.count())));
  a.backoff_wait = milliseconds(static_cast<std::int64_t>(wait));
}

bool stable(const Policy& p, const AgentState& a, MonoTime now) {
  return a.backoff_level > 0 && a.healthy_since && now - *a.healthy_since >= p.stable_after;
}

void forget_backoff(AgentState& a) {
  a.backoff_level = 0;
  a.backoff_wait = milliseconds(0);
}

}  // namespace trading_heal::actuator::budget
