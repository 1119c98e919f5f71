// The probe's pure verdict logic: facts gathered about one agent -> its HealthReport.
// No I/O, no clock reads: the shell passes every fact and `now` in. Not thread-safe (the
// trackers hold per-agent state); owned by the probe's loop thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "trading_heal/common/clock.hpp"
#include "trading_heal/common/config.hpp"
#include "trading_heal/proto/messages.hpp"

namespace trading_heal::probe {

// What systemd says about the unit (org.freedesktop.systemd1 properties).
struct UnitFacts {
  std::string load_state;    // loaded, not-found, ...
  std::string active_state;  // active, inactive, failed, activating, deactivating, reloading
  std::string sub_state;     // running, dead, auto-restart, ...
  std::string result;        // success, exit-code, signal, core-dump, oom-kill, ...
  std::uint32_t main_pid = 0;
  std::uint32_t n_restarts = 0;
  std::optional<double> active_enter_ts;  // epoch seconds; nullopt when never active
  // Inactive with result success, and the probe saw it active before with no job on the unit
  // since: its main process exited by itself (status 0), nobody stopped it. Without that
  // observation (an inactive unit at the probe's start) a clean stop counts as intentional.
  bool exited_unbidden = false;
};

// What /proc says about the unit's MainPID.
struct ProcessFacts {
  bool exists = false;
  bool zombie = false;
  std::optional<bool> pattern_ok;  // nullopt: no pattern configured
  std::uint64_t rss_bytes = 0;
  double cpu_ratio = 0;
};

// What PostgreSQL said about the agent's (symbol, profile) this cycle.
enum class DbAnswer {
  kUnavailable,   // the query failed, timed out, or was not attempted (PostgreSQL down/slow)
  kRow,           // newest decision timestamp inside the search window: `newest_ts`
  kOlderThanCap,  // no row inside the window, but rows exist (or we saw one before)
  kNeverSeen,     // (symbol, profile) never had a row: probable configuration mismatch
};

struct AgeFacts {
  DbAnswer db = DbAnswer::kUnavailable;
  double newest_ts = 0;                // with kRow
  std::optional<double> heartbeat_ts;  // epoch seconds from the heartbeat file
};

struct AgentFacts {
  std::optional<UnitFacts> unit;        // nullopt: systemd did not answer
  std::optional<ProcessFacts> process;  // nullopt: not examined (no MainPID)
  AgeFacts age;
};

struct VerdictPolicy {
  // The agent's threshold (the probe passes each agent's own: fixed, or learned with auto) and
  // where it came from; both go into the report.
  double stall_threshold_s = 600;
  proto::ThresholdSource threshold_source = proto::ThresholdSource::kFixed;
  double age_cap_s = 1800;        // the DB search window: beyond it "older than the cap"
  double future_tolerance_s = 5;  // a newest timestamp further ahead is clock skew
  // A (re)started agent bootstraps (candles, training) before its first decision: until it has
  // decided since its start, its age counts from start + grace (TRADING_HEAL_STARTUP_GRACE).
  double startup_grace_s = 120;
};

// Per-agent memory of the newest decision timestamp, so that (a) a timestamp in the future does
// not count as fresh forever: its age is measured from when we first saw it, and (b) a row that
// left the search window keeps its exact age (no newer row can exist outside the window).
class AgeMemory {
 public:
  struct Seen {
    double ts = 0;
    double first_seen = 0;  // our wall clock when this newest ts was first observed
  };
  // Records `ts` as the newest of `key`, returns the memory after the update.
  const Seen& observe(const std::string& key, double ts, double now);
  const Seen* find(const std::string& key) const;
  void forget(const std::string& key) { seen_.erase(key); }

 private:
  std::map<std::string, Seen> seen_;
};

// Consecutive failures per agent: DOWN/STALLED increment, HEALTHY resets, UNKNOWN and STOPPED
// leave the count alone. With a time and a spacing, a failure counts only when it comes at least
// `spacing` after the last one counted: N failures in a row then span at least (N-1) x spacing,
// whichever checks (cycle, deadline, confirmation) saw them.
class FailureCounter {
 public:
  std::uint32_t apply(const std::string& agent, proto::Verdict v);
  std::uint32_t apply(const std::string& agent, proto::Verdict v, common::MonoTime now,
                      common::MonoTime::duration spacing);
  std::uint32_t get(const std::string& agent) const;

 private:
  struct Count {
    std::uint32_t n = 0;
    std::optional<common::MonoTime> last;  // when the last counted failure was seen
  };
  std::map<std::string, Count> counts_;
};

// Computes the verdict and fills the report's checks, ages and detail. `memory` is updated
// with the DB answer. `report.consecutive_failures` is left to the caller (FailureCounter).
// `effective_age`, when given, receives the age the stall verdict compared with the threshold
// (after the startup grace; nullopt when no age applied): with it the caller knows when the agent
// turns stale if nothing new comes.
proto::HealthReport evaluate(const common::AgentSpec& agent, const AgentFacts& facts,
                             const VerdictPolicy& policy, double now, AgeMemory& memory,
                             std::optional<double>* effective_age = nullptr);

// The search window's lower bound for one key: the newest timestamp we know (no older row
// matters), but at most `cap` back from now.
double window_start(const AgeMemory& memory, const std::string& key, double now, double cap);

// Key used by AgeMemory and the fleet query for (symbol, profile).
std::string age_key(const std::string& symbol, const std::string& profile);

}  // namespace trading_heal::probe
