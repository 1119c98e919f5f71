// Names of the schema's enumerations on the wire and in JSON.
#include <array>
#include <utility>

#include "trading_heal/proto/codec.hpp"
#include "trading_heal/proto/messages.hpp"

namespace trading_heal::proto {
namespace {

template <class E, std::size_t N>
using Table = std::array<std::pair<E, std::string_view>, N>;

constexpr Table<Kind, 6> kKinds{{{Kind::kHealth, "health"},
                                 {Kind::kHeartbeat, "heartbeat"},
                                 {Kind::kDiagnosis, "diagnosis"},
                                 {Kind::kEvent, "event"},
                                 {Kind::kCommand, "command"},
                                 {Kind::kAck, "ack"}}};
constexpr Table<Verdict, 5> kVerdicts{{{Verdict::kHealthy, "HEALTHY"},
                                       {Verdict::kDown, "DOWN"},
                                       {Verdict::kStalled, "STALLED"},
                                       {Verdict::kStopped, "STOPPED"},
                                       {Verdict::kUnknown, "UNKNOWN"}}};
constexpr Table<AgeSource, 3> kAgeSources{
    {{AgeSource::kDb, "db"}, {AgeSource::kHeartbeat, "heartbeat"}, {AgeSource::kNone, "none"}}};
constexpr Table<ThresholdSource, 2> kThresholdSources{
    {{ThresholdSource::kFixed, "fixed"}, {ThresholdSource::kLearned, "learned"}}};
constexpr Table<Severity, 4> kSeverities{{{Severity::kLow, "low"},
                                          {Severity::kMedium, "medium"},
                                          {Severity::kHigh, "high"},
                                          {Severity::kCritical, "critical"}}};
constexpr Table<DiagnosisAction, 3> kActions{{{DiagnosisAction::kAutoRestart, "auto-restart"},
                                              {DiagnosisAction::kWait, "wait"},
                                              {DiagnosisAction::kManual, "manual"}}};
constexpr Table<CommandVerb, 4> kVerbs{{{CommandVerb::kPause, "pause"},
                                        {CommandVerb::kResume, "resume"},
                                        {CommandVerb::kStatus, "status"},
                                        {CommandVerb::kDiagnose, "diagnose"}}};
constexpr Table<Reject, kRejectCount> kRejects{{{Reject::kOversized, "oversized"},
                                                {Reject::kMalformed, "malformed"},
                                                {Reject::kLimitExceeded, "limit_exceeded"},
                                                {Reject::kNotAMap, "not_a_map"},
                                                {Reject::kBadVersion, "bad_version"},
                                                {Reject::kUnknownKind, "unknown_kind"},
                                                {Reject::kMissingField, "missing_field"},
                                                {Reject::kWrongType, "wrong_type"},
                                                {Reject::kBadValue, "bad_value"}}};

template <class E, std::size_t N>
std::string_view name(const Table<E, N>& t, E e) {
  for (const auto& [k, v] : t) {
    if (k == e) return v;
  }
  return "?";
}

template <class E, std::size_t N>
std::optional<E> parse(const Table<E, N>& t, std::string_view s) {
  for (const auto& [k, v] : t) {
    if (v == s) return k;
  }
  return std::nullopt;
}

}  // namespace

std::string_view to_string(Kind k) { return name(kKinds, k); }
std::string_view to_string(Verdict v) { return name(kVerdicts, v); }
std::string_view to_string(AgeSource s) { return name(kAgeSources, s); }
std::string_view to_string(ThresholdSource s) { return name(kThresholdSources, s); }
std::string_view to_string(Severity s) { return name(kSeverities, s); }
std::string_view to_string(DiagnosisAction a) { return name(kActions, a); }
std::string_view to_string(CommandVerb v) { return name(kVerbs, v); }
std::string_view to_string(Reject r) { return name(kRejects, r); }
std::optional<Kind> kind_from_string(std::string_view s) { return parse(kKinds, s); }
std::optional<Verdict> verdict_from_string(std::string_view s) { return parse(kVerdicts, s); }
std::optional<AgeSource> age_source_from_string(std::string_view s) {
  return parse(kAgeSources, s);
}
std::optional<ThresholdSource> threshold_source_from_string(std::string_view s) {
  return parse(kThresholdSources, s);
}
std::optional<Severity> severity_from_string(std::string_view s) { return parse(kSeverities, s); }
std::optional<DiagnosisAction> diagnosis_action_from_string(std::string_view s) {
  return parse(kActions, s);
}
std::optional<CommandVerb> command_verb_from_string(std::string_view s) { return parse(kVerbs, s); }

Kind kind_of(const Body& body) {
  static constexpr std::array<Kind, 6> kByIndex{Kind::kHealth, Kind::kHeartbeat, Kind::kDiagnosis,
                                                Kind::kEvent,  Kind::kCommand,   Kind::kAck};
  return kByIndex.at(body.index());
}

Message make_message(std::string source, std::string boot_id, std::uint64_t seq, double ts,
                     Body body) {
  Message m{
      Envelope{kProtocolVersion, kind_of(body), std::move(source), std::move(boot_id), seq, ts},
      std::move(body)};
  return m;
}

std::uint64_t RejectCounter::total() const {
  std::uint64_t sum = 0;
  for (auto c : counts_) sum += c;
  return sum;
}

}  // namespace trading_heal::proto
