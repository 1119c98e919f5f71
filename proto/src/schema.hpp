// The field list of every message kind: the single table that encode, decode and JSON walk.
// Names here are the wire names; see PROTOCOL.md. Internal header.
#pragma once

#include <type_traits>

#include "trading_heal/proto/messages.hpp"

namespace trading_heal::proto::detail {

enum class Need { kRequired, kOptional };
inline constexpr Need kReq = Need::kRequired;
inline constexpr Need kOpt = Need::kOptional;

template <class M, class T>
concept Is = std::is_same_v<std::remove_const_t<M>, T>;

template <class M, class V>
requires Is<M, HealthReport>
void visit_fields(M& m, V&& v) {
  v("agent", m.agent, kReq);
  v("unit", m.unit, kOpt);
  v("symbol", m.symbol, kOpt);
  v("profile", m.profile, kOpt);
  v("verdict", m.verdict, kReq);
  v("consecutive_failures", m.consecutive_failures, kOpt);
  v("decision_age_seconds", m.decision_age_seconds, kOpt);
  v("age_source", m.age_source, kOpt);
  v("heartbeat_age_seconds", m.heartbeat_age_seconds, kOpt);
  v("active_state", m.active_state, kOpt);
  v("sub_state", m.sub_state, kOpt);
  v("result", m.result, kOpt);
  v("main_pid", m.main_pid, kOpt);
  v("rss_bytes", m.rss_bytes, kOpt);
  v("cpu_ratio", m.cpu_ratio, kOpt);
  v("n_restarts", m.n_restarts, kOpt);
  v("active_enter_ts", m.active_enter_ts, kOpt);
  v("unit_ok", m.unit_ok, kOpt);
  v("process_ok", m.process_ok, kOpt);
  v("age_ok", m.age_ok, kOpt);
  v("clock_skew", m.clock_skew, kOpt);
  v("never_seen", m.never_seen, kOpt);
  v("detail", m.detail, kOpt);
  v("stall_threshold_seconds", m.stall_threshold_seconds, kOpt);
  v("threshold_source", m.threshold_source, kOpt);
}

template <class M, class V>
requires Is<M, Heartbeat>
void visit_fields(M& m, V&& v) {
  v("component", m.component, kReq);
  v("pid", m.pid, kOpt);
  v("interval_seconds", m.interval_seconds, kOpt);
  v("stats", m.stats, kOpt);
}

template <class M, class V>
requires Is<M, Diagnosis>
void visit_fields(M& m, V&& v) {
  v("agent", m.agent, kReq);
  v("incident", m.incident, kOpt);
  v("cause", m.cause, kReq);
  v("severity", m.severity, kReq);
  v("action", m.action, kReq);
  v("explanation", m.explanation, kOpt);
  v("category", m.category, kOpt);
  v("origin", m.source, kOpt);  // not "source": the JSON view puts the envelope's there
  v("model", m.model, kOpt);
  v("latency_seconds", m.latency_seconds, kOpt);
  v("llm_error", m.llm_error, kOpt);
}

template <class M, class V>
requires Is<M, Event>
void visit_fields(M& m, V&& v) {
  v("action", m.action, kReq);
  v("agent", m.agent, kOpt);
  v("symbol", m.symbol, kOpt);
  v("profile", m.profile, kOpt);
  v("success", m.success, kOpt);
  v("detail", m.detail, kOpt);
  v("reason", m.reason, kOpt);
  v("diagnosis", m.diagnosis, kOpt);
  v("fields", m.fields, kOpt);
}

template <class M, class V>
requires Is<M, Command>
void visit_fields(M& m, V&& v) {
  v("verb", m.verb, kReq);
  v("agent", m.agent, kOpt);
  v("reason", m.reason, kOpt);
  v("until", m.until, kOpt);
  v("request_id", m.request_id, kOpt);
}

template <class M, class V>
requires Is<M, Ack>
void visit_fields(M& m, V&& v) {
  v("of_source", m.of_source, kReq);
  v("of_boot_id", m.of_boot_id, kReq);
  v("of_seq", m.of_seq, kReq);
  v("ok", m.ok, kOpt);
  v("detail", m.detail, kOpt);
}

// Enum <-> wire string, for the field walkers.
template <class E>
struct EnumName;
#define TH_PROTO_ENUM(E, from)                                            \
  template <>                                                             \
  struct EnumName<E> {                                                    \
    static std::string_view str(E e) { return to_string(e); }             \
    static std::optional<E> parse(std::string_view s) { return from(s); } \
  };
TH_PROTO_ENUM(Verdict, verdict_from_string)
TH_PROTO_ENUM(AgeSource, age_source_from_string)
TH_PROTO_ENUM(ThresholdSource, threshold_source_from_string)
TH_PROTO_ENUM(Severity, severity_from_string)
TH_PROTO_ENUM(DiagnosisAction, diagnosis_action_from_string)
TH_PROTO_ENUM(CommandVerb, command_verb_from_string)
#undef TH_PROTO_ENUM

}  // namespace trading_heal::proto::detail
