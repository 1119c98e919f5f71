// The wire schema: the envelope and every message kind exchanged between trading-heal processes.
//
// Adding or changing a field or a kind? Change together: the struct here, its field list in
// src/schema.hpp, PROTOCOL.md, the round-trip test (tests/proto/codec_test.cpp) and the golden
// fixtures (tests/proto/golden/). Fields travel by name: an older reader ignores fields it does
// not know, so adding an optional field needs no version bump; removing or retyping one does.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace trading_heal::proto {

inline constexpr std::uint32_t kProtocolVersion = 1;

enum class Kind { kHealth, kHeartbeat, kDiagnosis, kEvent, kCommand, kAck };

enum class Verdict { kHealthy, kDown, kStalled, kStopped, kUnknown };
enum class AgeSource { kDb, kHeartbeat, kNone };
// Where an agent's stall threshold came from: the configured one, or learned from its history
// (TRADING_HEAL_STALL_THRESHOLD=auto).
enum class ThresholdSource { kFixed, kLearned };
enum class Severity { kLow, kMedium, kHigh, kCritical };
// The only actions a diagnosis may recommend. The target is never part of a diagnosis: the
// actuator picks the unit from its own configuration.
enum class DiagnosisAction { kAutoRestart, kWait, kManual };
enum class CommandVerb { kPause, kResume, kStatus, kDiagnose };

// A scalar for the open-ended `fields` of an event or the `stats` of a heartbeat.
using Value = std::variant<bool, std::int64_t, double, std::string>;
using Fields = std::map<std::string, Value>;

struct Envelope {
  std::uint32_t version = kProtocolVersion;
  Kind kind = Kind::kHealth;
  std::string source;   // component name: probe, diagnoser, actuator, exporter, ctl, tap, ...
  std::string boot_id;  // random per process start; (source, boot_id, seq) identifies a message
  std::uint64_t seq = 0;
  double ts = 0;  // Unix epoch seconds, sender's wall clock
  // Reliable channels only, set at send time (never stored): the sender holds no earlier record
  // of this (source, boot_id), so a receiver that has not seen the seqs before it may accept
  // it. Encoded as `first: true`, omitted when false.
  bool first_held = false;
};

// One agent's health, published by the probe every cycle (state: the next one replaces it).
struct HealthReport {
  std::string agent;  // instance, e.g. BTC_USDT
  std::string unit;   // crypto-agent@BTC_USDT.service
  std::string symbol;
  std::string profile;
  Verdict verdict = Verdict::kUnknown;
  std::uint32_t consecutive_failures = 0;
  std::optional<double> decision_age_seconds;  // null when unknown
  AgeSource age_source = AgeSource::kNone;
  std::optional<double> heartbeat_age_seconds;
  std::string active_state;
  std::string sub_state;
  std::string result;
  std::uint32_t main_pid = 0;
  std::uint64_t rss_bytes = 0;
  double cpu_ratio = 0;                   // CPU seconds per wall second since the previous sample
  std::uint32_t n_restarts = 0;           // systemd's own NRestarts
  std::optional<double> active_enter_ts;  // epoch seconds the unit last became active
  bool unit_ok = false;
  bool process_ok = false;
  bool age_ok = false;
  bool clock_skew = false;  // the newest decision lies in the future
  bool never_seen = false;  // (symbol, profile) never had a row: probable mapping mistake
  std::string detail;       // human-readable summary of the failed checks
  // The threshold the decision age was judged by (null: a probe before it was reported).
  std::optional<double> stall_threshold_seconds;
  ThresholdSource threshold_source = ThresholdSource::kFixed;
};

// Liveness and counters of a component, sent every interval (also carries the probe status).
struct Heartbeat {
  std::string component;
  std::uint32_t pid = 0;
  double interval_seconds = 0;  // how often the component sends this
  Fields stats;                 // e.g. db_reachable, cycle_seconds, overruns, rejected.malformed
};

struct Diagnosis {
  std::string agent;
  std::string incident;  // incident id the diagnosis belongs to (may be empty)
  std::string cause;
  Severity severity = Severity::kMedium;
  DiagnosisAction action = DiagnosisAction::kAutoRestart;
  std::string explanation;
  std::string category;  // rule category, e.g. db_lock, api_timeout, oom, crash
  std::string source;    // rules | llm | cache (wire and JSON name: "origin")
  std::string model;
  double latency_seconds = 0;
  std::optional<std::string> llm_error;  // why the LLM answer was not used
};

// An audit record. Identified by the envelope's (source, boot_id, seq).
struct Event {
  std::string action;  // restart, recovered, rate_limited, ollama_error, diagnosis, ...
  std::string agent;
  std::string symbol;
  std::string profile;
  bool success = true;
  std::string detail;
  std::string reason;
  std::optional<std::string> diagnosis;
  Fields fields;  // action-specific extras (latency_seconds, dry_run, age_seconds, ...)
};

struct Command {
  CommandVerb verb = CommandVerb::kStatus;
  std::string agent;
  std::string reason;
  std::optional<double> until;  // pause expiry, epoch seconds
  std::string request_id;
};

// Acknowledges a reliable message: (of_source, of_boot_id, of_seq) is durable at the receiver.
struct Ack {
  std::string of_source;
  std::string of_boot_id;
  std::uint64_t of_seq = 0;
  bool ok = true;
  std::string detail;
};

using Body = std::variant<HealthReport, Heartbeat, Diagnosis, Event, Command, Ack>;

struct Message {
  Envelope env;
  Body body;
};

// Kind of a body alternative; `make_message` fills the envelope's kind from the body.
Kind kind_of(const Body& body);
Message make_message(std::string source, std::string boot_id, std::uint64_t seq, double ts,
                     Body body);

std::string_view to_string(Kind k);
std::string_view to_string(Verdict v);
std::string_view to_string(AgeSource s);
std::string_view to_string(ThresholdSource s);
std::string_view to_string(Severity s);
std::string_view to_string(DiagnosisAction a);
std::string_view to_string(CommandVerb v);
std::optional<Kind> kind_from_string(std::string_view s);
std::optional<Verdict> verdict_from_string(std::string_view s);
std::optional<AgeSource> age_source_from_string(std::string_view s);
std::optional<ThresholdSource> threshold_source_from_string(std::string_view s);
std::optional<Severity> severity_from_string(std::string_view s);
std::optional<DiagnosisAction> diagnosis_action_from_string(std::string_view s);
std::optional<CommandVerb> command_verb_from_string(std::string_view s);

}  // namespace trading_heal::proto
