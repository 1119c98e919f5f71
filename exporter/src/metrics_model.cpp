#include "trading_heal/exporter/metrics_model.hpp"

#include <cmath>
#include <limits>

namespace trading_heal::exporter {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

bool valid_label_value(const std::string& s, std::string_view extra, std::size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && extra.find(c) == std::string_view::npos) return false;
  }
  return true;
}

bool valid_action(const std::string& s) {
  if (s.empty() || s.size() > 32) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || c == '_')) return false;
  }
  return true;
}

std::optional<double> number_field(const proto::Fields& f, const std::string& name) {
  auto it = f.find(name);
  if (it == f.end()) return std::nullopt;
  if (const auto* d = std::get_if<double>(&it->second)) return *d;
  if (const auto* i = std::get_if<std::int64_t>(&it->second)) return static_cast<double>(*i);
  return std::nullopt;
}

std::optional<bool> bool_field(const proto::Fields& f, const std::string& name) {
  auto it = f.find(name);
  if (it == f.end()) return std::nullopt;
  if (const auto* b = std::get_if<bool>(&it->second)) return *b;
  if (const auto* i = std::get_if<std::int64_t>(&it->second)) return *i != 0;
  if (const auto* d = std::get_if<double>(&it->second)) return *d != 0;
  return std::nullopt;
}

std::string string_field(const proto::Fields& f, const std::string& name) {
  auto it = f.find(name);
  if (it == f.end()) return {};
  if (const auto* s = std::get_if<std::string>(&it->second)) return *s;
  return {};
}

const prometheus::Histogram::BucketBoundaries kDurationBuckets = {
    0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60};

}  // namespace

MetricsModel::MetricsModel(prometheus::Registry& reg, const std::vector<common::AgentSpec>& agents)
    : up_(BuildGauge()
              .Name("trading_agent_up")
              .Help("1 when the agent's unit is active and its process runs, 0 when down")
              .Register(reg)),
      stalled_(BuildGauge()
                   .Name("trading_agent_stalled")
                   .Help("1 when the agent wrote no decision within the stall threshold, else 0")
                   .Register(reg)),
      age_(BuildGauge()
               .Name("trading_agent_last_decision_age_seconds")
               .Help("Seconds since the agent's newest decision (NaN when unknown)")
               .Register(reg)),
      analyze_(BuildCounter()
                   .Name("trading_ollama_analyze_total")
                   .Help("Root-cause analyses answered by Ollama for the agent")
                   .Register(reg)),
      latency_(BuildGauge()
                   .Name("trading_ollama_analysis_latency_seconds")
                   .Help("Latency of the agent's last Ollama analysis in seconds")
                   .Register(reg)),
      restarts_(BuildCounter()
                    .Name("trading_agent_restart_total")
                    .Help("Successful restarts of the agent by trading-heal")
                    .Register(reg)),
      consecutive_(BuildGauge()
                       .Name("trading_agent_consecutive_failures")
                       .Help("Consecutive failed health checks of the agent")
                       .Register(reg)),
      actions_(BuildCounter()
                   .Name("trading_selfheal_actions_total")
                   .Help("Self-healing audit events by action (restart, recovered, rate_limited, "
                         "ollama_error, ...)")
                   .Register(reg)),
      duration_family_(BuildHistogram()
                           .Name("trading_ollama_analysis_duration_seconds")
                           .Help("Duration of Ollama analyses (answered or failed) in seconds")
                           .Register(reg)),
      duration_(duration_family_.Add({}, kDurationBuckets)),
      rss_(BuildGauge()
               .Name("trading_agent_rss_bytes")
               .Help("Resident memory of the agent's main process in bytes")
               .Register(reg)),
      cpu_(BuildGauge()
               .Name("trading_agent_cpu_ratio")
               .Help("CPU seconds per wall-clock second of the agent's main process")
               .Register(reg)),
      heartbeat_age_(BuildGauge()
                         .Name("trading_agent_heartbeat_age_seconds")
                         .Help("Seconds since the agent last wrote its heartbeat file (NaN when "
                               "unknown)")
                         .Register(reg)),
      global_incident_(BuildGauge()
                           .Name("trading_selfheal_global_incident")
                           .Help("1 while several agents fail together (one global incident)")
                           .Register(reg)
                           .Add({})),
      component_up_(BuildGauge()
                        .Name("trading_selfheal_component_up")
                        .Help("1 when the component was heard from within 3 intervals")
                        .Register(reg)),
      probe_cycle_(BuildGauge()
                       .Name("trading_selfheal_probe_cycle_seconds")
                       .Help("Duration of the probe's last health-check cycle in seconds")
                       .Register(reg)
                       .Add({})),
      rejected_(BuildCounter()
                    .Name("trading_selfheal_messages_rejected_total")
                    .Help("Messages the exporter dropped as invalid, by reason")
                    .Register(reg)),
      gaps_(BuildCounter()
                .Name("trading_selfheal_events_gap_total")
                .Help("Sequence numbers skipped in the reliable event streams")
                .Register(reg)
                .Add({})),
      audit_written_(BuildCounter()
                         .Name("trading_selfheal_audit_events_total")
                         .Help("Audit events written durably to the audit file")
                         .Register(reg)
                         .Add({})),
      audit_errors_(BuildCounter()
                        .Name("trading_selfheal_audit_write_errors_total")
                        .Help("Failed writes or fsyncs of the audit file (events kept by senders)")
                        .Register(reg)
                        .Add({})),
      duplicates_(BuildCounter()
                      .Name("trading_selfheal_events_duplicate_total")
                      .Help("Resent audit events recognised as already written")
                      .Register(reg)
                      .Add({})),
      deferred_(BuildGauge()
                    .Name("trading_selfheal_audit_blocked_senders")
                    .Help("Senders whose events wait because an earlier one is not yet written")
                    .Register(reg)
                    .Add({})) {
  no_symbol_.labels = {{"symbol", ""}};
  for (const auto& c : kComponents) component_up_.Add({{"component", c}}).Set(c == "exporter");
  for (std::size_t i = 0; i < proto::kRejectCount; ++i) {
    rejected_.Add({{"reason", std::string(proto::to_string(static_cast<proto::Reject>(i)))}});
  }
  rejected_last_.assign(proto::kRejectCount, 0);
  // Counters of configured agents exist from the start, so increase() sees their first event.
  for (const auto& spec : agents) {
    if (Agent* a = agent(spec.symbol, spec.profile)) {
      for (const char* act : {"restart", "recovered", "rate_limited", "ollama_error"}) {
        action_counter(act, a);
      }
    }
  }
}

MetricsModel::Agent* MetricsModel::agent(const std::string& symbol, const std::string& profile) {
  const std::string prof = profile == "default" ? std::string() : profile;
  auto key = std::make_pair(symbol, prof);
  if (auto it = agents_.find(key); it != agents_.end()) return &it->second;
  if (agents_.size() >= kMaxAgents || !valid_label_value(symbol, "-_.", 64) ||
      (!prof.empty() && !valid_label_value(prof, "_-", 64))) {
    ++dropped_labels_;
    return nullptr;
  }
  Agent a;
  a.labels = {{"symbol", symbol}};
  if (!prof.empty()) a.labels["profile"] = prof;
  a.analyze = &analyze_.Add(a.labels);
  a.restarts = &restarts_.Add(a.labels);
  return &agents_.emplace(key, std::move(a)).first->second;
}

void MetricsModel::ensure_gauges(Agent& a) {
  if (a.up != nullptr) return;
  a.up = &up_.Add(a.labels);
  a.stalled = &stalled_.Add(a.labels);
  a.age = &age_.Add(a.labels);
  a.consecutive = &consecutive_.Add(a.labels);
  a.rss = &rss_.Add(a.labels);
  a.cpu = &cpu_.Add(a.labels);
  a.heartbeat_age = &heartbeat_age_.Add(a.labels);
}

prometheus::Counter* MetricsModel::action_counter(const std::string& action, const Agent* a) {
  std::string act = action;
  if (!valid_action(act) || (actions_seen_.count(act) == 0 && actions_seen_.size() >= kMaxActions)) {
    act = "other";
  }
  actions_seen_.insert(act);
  prometheus::Labels labels = a != nullptr ? a->labels : no_symbol_.labels;
  labels["action"] = act;
  return &actions_.Add(labels);
}

void MetricsModel::on_health(const proto::HealthReport& r) {
  Agent* a = agent(r.symbol, r.profile);
  if (a == nullptr) return;
  ensure_gauges(*a);
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  const bool known_age = r.decision_age_seconds.has_value();
  a->up->Set(r.unit_ok && r.process_ok ? 1 : 0);
  a->stalled->Set(r.verdict == proto::Verdict::kStalled || (known_age && !r.age_ok) ? 1 : 0);
  a->age->Set(r.decision_age_seconds.value_or(kNaN));
  a->consecutive->Set(r.consecutive_failures);
  a->rss->Set(static_cast<double>(r.rss_bytes));
  a->cpu->Set(r.cpu_ratio);
  a->heartbeat_age->Set(r.heartbeat_age_seconds.value_or(kNaN));
}

void MetricsModel::on_heartbeat(const proto::Heartbeat& hb) {
  if (hb.component == "probe") {
    if (auto c = number_field(hb.stats, "cycle_seconds")) probe_cycle_.Set(*c);
  } else if (hb.component == "actuator") {
    if (auto g = bool_field(hb.stats, "global_incident")) set_global_incident(*g);
  }
}

void MetricsModel::on_event(const proto::Event& e) {
  Agent* a = e.symbol.empty() ? nullptr : agent(e.symbol, e.profile);
  if (!e.symbol.empty() && a == nullptr) return;  // counted in dropped_labels
  action_counter(e.action, a)->Increment();
  if (e.action == "restart" && e.success && a != nullptr) a->restarts->Increment();
  if (e.action == "diagnosis" || e.action == "ollama_error") {
    std::string src = string_field(e.fields, "source");
    if (src.empty()) src = string_field(e.fields, "diagnosis_source");
    const bool llm = e.action == "ollama_error" || (src != "rules" && src != "cache");
    auto latency = number_field(e.fields, "latency_seconds");
    if (llm && latency && std::isfinite(*latency) && *latency >= 0) {
      duration_.Observe(*latency);
      if (a != nullptr) {
        if (a->latency == nullptr) a->latency = &latency_.Add(a->labels);
        a->latency->Set(*latency);
      }
    }
    if (llm && e.action == "diagnosis" && a != nullptr) a->analyze->Increment();
  }
  if (e.action == "global_incident") set_global_incident(bool_field(e.fields, "active").value_or(true));
}

void MetricsModel::set_component_up(const std::string& component, bool up) {
  component_up_.Add({{"component", component}}).Set(up ? 1 : 0);
}

void MetricsModel::set_global_incident(bool active) { global_incident_.Set(active ? 1 : 0); }

void MetricsModel::set_rejected(proto::Reject reason, std::uint64_t total) {
  auto& last = rejected_last_.at(static_cast<std::size_t>(reason));
  if (total > last) {
    rejected_.Add({{"reason", std::string(proto::to_string(reason))}})
        .Increment(static_cast<double>(total - last));
    last = total;
  }
}

void MetricsModel::add_gaps(std::uint64_t n) {
  if (n > 0) gaps_.Increment(static_cast<double>(n));
}
void MetricsModel::add_audit_written(std::uint64_t n) {
  if (n > 0) audit_written_.Increment(static_cast<double>(n));
}
void MetricsModel::add_audit_write_error() { audit_errors_.Increment(); }
void MetricsModel::add_duplicates(std::uint64_t n) {
  if (n > 0) duplicates_.Increment(static_cast<double>(n));
}
void MetricsModel::set_deferred(std::size_t n) { deferred_.Set(static_cast<double>(n)); }

}  // namespace trading_heal::exporter
