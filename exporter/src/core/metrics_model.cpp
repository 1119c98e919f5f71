#include "trading_heal/exporter/metrics_model.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <type_traits>

#include <prometheus/client_metric.h>
#include <prometheus/detail/builder.h>
#include <prometheus/metric_type.h>

namespace trading_heal::exporter {
namespace {

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

const prometheus::Histogram::BucketBoundaries kDurationBuckets = {0.25, 0.5, 1,  2,  3,  5, 7.5,
                                                                  10,   15,  20, 30, 45, 60};
// A report crosses a LAN in well under a millisecond; tens of ms say a busy centre, seconds a
// skewed clock or a backlog.
const prometheus::Histogram::BucketBoundaries kReportDelayBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

// Value formatting of prometheus-cpp 1.0's TextSerializer: "%.*g" with max_digits10 - 1 = 16
// significant digits (to_chars with chars_format::general and precision 16 prints the same),
// Nan / +Inf / -Inf.
void append_double(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "Nan";
  } else if (std::isinf(v)) {
    out += v < 0 ? "-Inf" : "+Inf";
  } else {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general,
                           std::numeric_limits<double>::max_digits10 - 1);
    out.append(buf, r.ptr);
  }
}

void append_uint(std::string& out, std::uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void append_escaped(std::string& out, const std::string& v) {
  for (char c : v) {
    if (c == '\n') {
      out += "\\n";
    } else {
      if (c == '\\' || c == '"') out += '\\';
      out += c;
    }
  }
}

// name{a="x",b="y"[,extra="value"]} — braces only when there is a label.
void append_head(std::string& out, const std::string& name, const char* suffix,
                 const prometheus::Labels& labels, const char* extra_name = nullptr,
                 const std::string& extra_value = {}) {
  out += name;
  out += suffix;
  if (!labels.empty() || extra_name != nullptr) {
    out += '{';
    const char* sep = "";
    for (const auto& [k, v] : labels) {
      out += sep;
      out += k;
      out += "=\"";
      append_escaped(out, v);
      out += '"';
      sep = ",";
    }
    if (extra_name != nullptr) {
      out += sep;
      out += extra_name;
      out += "=\"";
      append_escaped(out, extra_value);
      out += '"';
    }
    out += '}';
  }
  out += ' ';
}

std::string escaped_help(const std::string& help) {
  std::string out;
  for (char c : help) {
    if (c == '\n') {
      out += "\\n";
    } else {
      if (c == '\\') out += '\\';
      out += c;
    }
  }
  return out;
}

}  // namespace

template <class T>
prometheus::Family<T>& MetricsModel::Index::family(prometheus::Registry& registry,
                                                   const std::string& name,
                                                   const std::string& help) {
  auto& family = prometheus::detail::Builder<T>().Name(name).Help(help).Register(registry);
  Entry e;
  e.name = name;
  if constexpr (std::is_same_v<T, prometheus::Counter>) e.type = prometheus::MetricType::Counter;
  if constexpr (std::is_same_v<T, prometheus::Gauge>) e.type = prometheus::MetricType::Gauge;
  if constexpr (std::is_same_v<T, prometheus::Histogram>) {
    e.type = prometheus::MetricType::Histogram;
  }
  const char* type = e.type == prometheus::MetricType::Counter ? "counter"
                     : e.type == prometheus::MetricType::Gauge ? "gauge"
                                                               : "histogram";
  e.head = "# HELP " + name + " " + escaped_help(help) + "\n# TYPE " + name + " " + type + "\n";
  std::lock_guard lock(mu_);
  entry_of_[&family] = entries_.size();
  entries_.push_back(std::move(e));
  return family;
}

template <class T, class... Args>
T& MetricsModel::Index::add(prometheus::Family<T>& family, const prometheus::Labels& labels,
                            Args&&... args) {
  T& metric = family.Add(labels, std::forward<Args>(args)...);
  std::lock_guard lock(mu_);
  Entry& e = entries_.at(entry_of_.at(&family));
  if constexpr (!std::is_same_v<T, prometheus::Histogram>) {
    std::string head;
    append_head(head, e.name, "", labels);
    if constexpr (std::is_same_v<T, prometheus::Counter>) {
      e.counters.try_emplace(labels, std::move(head), &metric);
    } else {
      e.gauges.try_emplace(labels, std::move(head), &metric);
    }
  }
  if constexpr (std::is_same_v<T, prometheus::Histogram>) e.histogram = &metric;
  return metric;
}

void MetricsModel::Index::render(std::string& out) const {
  std::lock_guard lock(mu_);
  const std::size_t start = out.size();
  out.reserve(start + last_size_ + last_size_ / 8 + 4096);
  // Registry::Collect's order: all counter families, then gauges, then histograms; a family
  // without series is left out.
  for (auto type : {prometheus::MetricType::Counter, prometheus::MetricType::Gauge,
                    prometheus::MetricType::Histogram}) {
    for (const Entry& e : entries_) {
      if (e.type != type) continue;
      if (e.counters.empty() && e.gauges.empty() && e.histogram == nullptr) continue;
      out += e.head;
      for (const auto& [labels, series] : e.counters) {
        out += series.first;
        append_double(out, series.second->Value());
        out += '\n';
      }
      for (const auto& [labels, series] : e.gauges) {
        out += series.first;
        append_double(out, series.second->Value());
        out += '\n';
      }
      if (e.histogram != nullptr) {
        const prometheus::ClientMetric m = e.histogram->Collect();
        const prometheus::Labels none;
        append_head(out, e.name, "_count", none);
        append_uint(out, m.histogram.sample_count);
        out += '\n';
        append_head(out, e.name, "_sum", none);
        append_double(out, m.histogram.sample_sum);
        out += '\n';
        double last = -std::numeric_limits<double>::infinity();
        for (const auto& b : m.histogram.bucket) {
          std::string le;
          append_double(le, b.upper_bound);
          append_head(out, e.name, "_bucket", none, "le", le);
          append_uint(out, b.cumulative_count);
          out += '\n';
          last = b.upper_bound;
        }
        if (last != std::numeric_limits<double>::infinity()) {
          append_head(out, e.name, "_bucket", none, "le", "+Inf");
          append_uint(out, m.histogram.sample_count);
          out += '\n';
        }
      }
    }
  }
  last_size_ = out.size() - start;
}

std::string MetricsModel::render() const {
  std::string out;
  index_.render(out);
  return out;
}

void MetricsModel::render(std::string& out) const { index_.render(out); }

MetricsModel::MetricsModel(prometheus::Registry& reg, const std::vector<common::AgentSpec>& agents,
                           std::string local_host)
    : up_(index_.family<prometheus::Gauge>(
          reg, "trading_agent_up",
          "1 when the agent's unit is active and its process runs, 0 when down")),
      stalled_(index_.family<prometheus::Gauge>(
          reg, "trading_agent_stalled",
          "1 when the agent wrote no decision within the stall threshold, else 0")),
      age_(index_.family<prometheus::Gauge>(
          reg, "trading_agent_last_decision_age_seconds",
          "Seconds since the agent's newest decision (NaN when unknown)")),
      analyze_(index_.family<prometheus::Counter>(
          reg, "trading_ollama_analyze_total",
          "Root-cause analyses answered by Ollama for the agent")),
      latency_(index_.family<prometheus::Gauge>(
          reg, "trading_ollama_analysis_latency_seconds",
          "Latency of the agent's last Ollama analysis in seconds")),
      restarts_(index_.family<prometheus::Counter>(
          reg, "trading_agent_restart_total", "Successful restarts of the agent by trading-heal")),
      consecutive_(
          index_.family<prometheus::Gauge>(reg, "trading_agent_consecutive_failures",
                                           "Consecutive failed health checks of the agent")),
      actions_(index_.family<prometheus::Counter>(
          reg, "trading_selfheal_actions_total",
          "Self-healing audit events by action (restart, recovered, rate_limited, "
          "ollama_error, ...)")),
      duration_family_(index_.family<prometheus::Histogram>(
          reg, "trading_ollama_analysis_duration_seconds",
          "Duration of Ollama analyses (answered or failed) in seconds")),
      duration_(index_.add(duration_family_, {}, kDurationBuckets)),
      rss_(index_.family<prometheus::Gauge>(
          reg, "trading_agent_rss_bytes", "Resident memory of the agent's main process in bytes")),
      cpu_(index_.family<prometheus::Gauge>(
          reg, "trading_agent_cpu_ratio",
          "CPU seconds per wall-clock second of the agent's main process")),
      heartbeat_age_(index_.family<prometheus::Gauge>(
          reg, "trading_agent_heartbeat_age_seconds",
          "Seconds since the agent last wrote its heartbeat file (NaN when "
          "unknown)")),
      stopped_(index_.family<prometheus::Gauge>(
          reg, "trading_agent_stopped",
          "1 when the agent's unit was stopped on purpose (a stop job), else 0")),
      stall_threshold_(index_.family<prometheus::Gauge>(
          reg, "trading_agent_stall_threshold_seconds",
          "The stall threshold the agent is judged by: the fixed one, or learned from its "
          "history (TRADING_HEAL_STALL_THRESHOLD=auto)")),
      unit_restarts_(index_.family<prometheus::Counter>(
          reg, "trading_agent_unit_restarts_total",
          "Restarts of the agent's unit by systemd itself (its Restart= setting, NRestarts)")),
      global_incident_(index_.family<prometheus::Gauge>(
          reg, "trading_selfheal_global_incident",
          "1 while several agents fail together (one global incident), by host")),
      component_up_(index_.family<prometheus::Gauge>(
          reg, "trading_selfheal_component_up",
          "1 when the component was heard from within 3 intervals")),
      probe_cycle_(index_.family<prometheus::Gauge>(
          reg, "trading_selfheal_probe_cycle_seconds",
          "Duration of the probe's last health-check cycle in seconds, by host")),
      host_up_(index_.family<prometheus::Gauge>(
          reg, "trading_selfheal_host_up",
          "1 when the host's probe was heard from within its silence limit, else 0")),
      rejected_(index_.family<prometheus::Counter>(
          reg, "trading_selfheal_messages_rejected_total",
          "Messages the exporter dropped as invalid, by reason")),
      gaps_(index_.add(index_.family<prometheus::Counter>(
                           reg, "trading_selfheal_events_gap_total",
                           "Sequence numbers skipped in the reliable event streams"),
                       {})),
      audit_written_(index_.add(
          index_.family<prometheus::Counter>(reg, "trading_selfheal_audit_events_total",
                                             "Audit events written durably to the audit file"),
          {})),
      audit_errors_(
          index_.add(index_.family<prometheus::Counter>(
                         reg, "trading_selfheal_audit_write_errors_total",
                         "Failed writes or fsyncs of the audit file (events kept by senders)"),
                     {})),
      duplicates_(index_.add(
          index_.family<prometheus::Counter>(reg, "trading_selfheal_events_duplicate_total",
                                             "Resent audit events recognised as already written"),
          {})),
      deferred_(
          index_.add(index_.family<prometheus::Gauge>(
                         reg, "trading_selfheal_audit_blocked_senders",
                         "Senders whose events wait because an earlier one is not yet written"),
                     {})),
      bus_reconnects_(index_.family<prometheus::Counter>(
          reg, "trading_selfheal_bus_reconnects_total",
          "systemd bus connections found lost and replaced by a new one, by component")),
      peers_refused_(index_.family<prometheus::Counter>(
          reg, "trading_selfheal_peers_refused_total",
          "Connections to a component's sockets refused because the peer's user may not speak "
          "there, by component")),
      report_delay_(index_.add(
          index_.family<prometheus::Histogram>(
              reg, "trading_selfheal_report_delay_seconds",
              "Health reports from other hosts: seconds from the host's send time (its clock) "
              "to their handling by this exporter (this host's clock)"),
          {}, kReportDelayBuckets)),
      local_host_(std::move(local_host)) {
  const prometheus::Labels& local = *host_labels(local_host_);
  // A centre without agents of its own (they report from their hosts) has no local components
  // but itself.
  const bool local_fleet = !agents.empty();
  for (const auto& c : kComponents) {
    if (local_fleet || c == "exporter") {
      index_.add(component_up_, with(local, "component", c)).Set(c == "exporter");
      index_.add(peers_refused_, with(local, "component", c));
    }
  }
  if (local_fleet) {
    for (const char* c : {"probe", "actuator"}) {
      index_.add(bus_reconnects_, with(local, "component", c));
    }
    index_.add(probe_cycle_, local);
  }
  index_.add(global_incident_, local).Set(0);
  index_.add(host_up_, local).Set(1);
  for (std::size_t i = 0; i < proto::kRejectCount; ++i) {
    index_.add(rejected_,
               {{"reason", std::string(proto::to_string(static_cast<proto::Reject>(i)))}});
  }
  rejected_last_.assign(proto::kRejectCount, 0);
  // Every per-agent series of a configured agent exists from the first scrape (Prometheus'
  // "avoid missing metrics"): counters at 0, so that increase() sees their first event and a
  // scrape tells "never" from "not exported"; gauges at NaN until the first health report says
  // what is true (an `up` of 0 before anyone looked would page TradingAgentDown).
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  for (const auto& spec : agents) {
    Agent* a = agent(local_host_, spec.symbol, spec.profile);
    if (a == nullptr) continue;
    for (const proto::Action act : kAgentActions) action_counter(proto::name(act), a, local);
    ensure_gauges(*a);
    for (prometheus::Gauge* g : {a->up, a->stalled, a->age, a->consecutive, a->rss, a->cpu,
                                 a->heartbeat_age, a->stopped, a->stall_threshold}) {
      g->Set(kNaN);
    }
    a->latency = &index_.add(latency_, a->labels);
    a->latency->Set(kNaN);
  }
}

const prometheus::Labels* MetricsModel::host_labels(const std::string& host) {
  if (auto it = hosts_.find(host); it != hosts_.end()) return &it->second;
  if (hosts_.size() >= kMaxHosts || !valid_label_value(host, "-_.", 63)) {
    ++dropped_labels_;
    return nullptr;
  }
  return &hosts_.emplace(host, prometheus::Labels{{"host", host}}).first->second;
}

prometheus::Labels MetricsModel::with(const prometheus::Labels& base, const char* key,
                                      std::string value) {
  prometheus::Labels labels = base;
  labels[key] = std::move(value);
  return labels;
}

MetricsModel::Agent* MetricsModel::agent(const std::string& host, const std::string& symbol,
                                         const std::string& profile) {
  const std::string prof = profile == "default" ? std::string() : profile;
  auto key = std::make_tuple(host, symbol, prof);
  if (auto it = agents_.find(key); it != agents_.end()) return &it->second;
  const prometheus::Labels* h = host_labels(host);
  if (h == nullptr) return nullptr;
  if (agents_.size() >= kMaxAgents || !valid_label_value(symbol, "-_.", 64) ||
      (!prof.empty() && !valid_label_value(prof, "_-", 64))) {
    ++dropped_labels_;
    return nullptr;
  }
  Agent a;
  a.labels = with(*h, "symbol", symbol);
  if (!prof.empty()) a.labels["profile"] = prof;
  a.analyze = &index_.add(analyze_, a.labels);
  a.restarts = &index_.add(restarts_, a.labels);
  return &agents_.emplace(key, std::move(a)).first->second;
}

void MetricsModel::ensure_gauges(Agent& a) {
  if (a.up != nullptr) return;
  a.up = &index_.add(up_, a.labels);
  a.stalled = &index_.add(stalled_, a.labels);
  a.age = &index_.add(age_, a.labels);
  a.consecutive = &index_.add(consecutive_, a.labels);
  a.rss = &index_.add(rss_, a.labels);
  a.cpu = &index_.add(cpu_, a.labels);
  a.heartbeat_age = &index_.add(heartbeat_age_, a.labels);
  a.stopped = &index_.add(stopped_, a.labels);
  a.stall_threshold = &index_.add(stall_threshold_, a.labels);
  a.unit_restarts = &index_.add(unit_restarts_, a.labels);
}

prometheus::Counter* MetricsModel::action_counter(const std::string& action, const Agent* a,
                                                  const prometheus::Labels& host) {
  std::string act = action;
  if (!valid_action(act) ||
      (actions_seen_.count(act) == 0 && actions_seen_.size() >= kMaxActions)) {
    act = "other";
  }
  actions_seen_.insert(act);
  prometheus::Labels labels = a != nullptr ? a->labels : with(host, "symbol", "");
  labels["action"] = act;
  return &index_.add(actions_, labels);
}

void MetricsModel::on_health(const proto::HealthReport& r, const std::string& host) {
  Agent* a = agent(host, r.symbol, r.profile);
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
  a->stopped->Set(r.verdict == proto::Verdict::kStopped ? 1 : 0);
  a->stall_threshold->Set(r.stall_threshold_seconds.value_or(kNaN));
  // systemd's NRestarts as a counter that survives the unit's own resets (a manual start or
  // our restart sets it back to 0): what it grew by, or all of it after a reset.
  if (!a->last_n_restarts || r.n_restarts < *a->last_n_restarts) {
    a->unit_restarts->Increment(r.n_restarts);
  } else {
    a->unit_restarts->Increment(r.n_restarts - *a->last_n_restarts);
  }
  a->last_n_restarts = r.n_restarts;
}

void MetricsModel::on_heartbeat(const proto::Heartbeat& hb, const std::string& boot_id,
                                const std::string& host) {
  const prometheus::Labels* h = host_labels(host);
  if (h == nullptr) return;
  if (hb.component == "probe") {
    if (auto c = number_field(hb.stats, "cycle_seconds")) index_.add(probe_cycle_, *h).Set(*c);
  } else if (hb.component == "actuator") {
    if (auto g = bool_field(hb.stats, "global_incident")) set_global_incident(host, *g);
  }
  if (std::find(kComponents.begin(), kComponents.end(), hb.component) != kComponents.end() &&
      hb.component != "exporter") {
    auto n = number_field(hb.stats, "peers_refused");
    if (n && std::isfinite(*n) && *n >= 0 && *n < 1e15) {
      add_cumulative(index_.add(peers_refused_, with(*h, "component", hb.component)), hb.component,
                     boot_id, static_cast<std::uint64_t>(*n));
    }
  }
  if (hb.component == "probe" || hb.component == "actuator") {
    auto n = number_field(hb.stats, "bus_reconnects");
    if (n && std::isfinite(*n) && *n >= 0 && *n < 1e15) {
      add_cumulative(index_.add(bus_reconnects_, with(*h, "component", hb.component)), hb.component,
                     boot_id, static_cast<std::uint64_t>(*n));
    }
  }
}

void MetricsModel::add_cumulative(prometheus::Counter& counter, const std::string& component,
                                  const std::string& boot_id, std::uint64_t total) {
  auto& [boot, last] = cumulative_last_[{component, &counter}];
  if (boot != boot_id) {  // a new process: its count starts from 0
    boot = boot_id;
    last = 0;
  }
  if (total > last) {
    counter.Increment(static_cast<double>(total - last));
    last = total;
  }
}

void MetricsModel::on_event(const proto::Event& e, const std::string& host) {
  const prometheus::Labels* h = host_labels(host);
  if (h == nullptr) return;  // counted in dropped_labels
  Agent* a = e.symbol.empty() ? nullptr : agent(host, e.symbol, e.profile);
  if (!e.symbol.empty() && a == nullptr) return;  // counted in dropped_labels
  action_counter(e.action, a, *h)->Increment();
  if (e.action == "restart" && e.success && a != nullptr) a->restarts->Increment();
  if (e.action == "diagnosis" || e.action == "ollama_error") {
    std::string src = string_field(e.fields, "source");
    if (src.empty()) src = string_field(e.fields, "diagnosis_source");
    const bool llm = e.action == "ollama_error" || (src != "rules" && src != "cache");
    auto latency = number_field(e.fields, "latency_seconds");
    if (llm && latency && std::isfinite(*latency) && *latency >= 0) {
      duration_.Observe(*latency);
      if (a != nullptr) {
        if (a->latency == nullptr) a->latency = &index_.add(latency_, a->labels);  // not configured
        a->latency->Set(*latency);
      }
    }
    if (llm && e.action == "diagnosis" && a != nullptr) a->analyze->Increment();
  }
  if (e.action == "global_incident")
    set_global_incident(host, bool_field(e.fields, "active").value_or(true));
}

void MetricsModel::set_component_up(const std::string& host, const std::string& component,
                                    bool up) {
  if (const auto* h = host_labels(host)) {
    index_.add(component_up_, with(*h, "component", component)).Set(up ? 1 : 0);
  }
}

void MetricsModel::set_host_up(const std::string& host, bool up) {
  const auto* h = host_labels(host);
  if (h == nullptr) return;
  index_.add(host_up_, *h).Set(up ? 1 : 0);
  if (up || host == local_host_) return;
  // A silent host's agents are unknown, not what its last report said (TradingAgentDown must
  // not fire for each of them, nor their last "up" stand): TradingSelfHealHostSilent says it.
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  for (auto it = agents_.lower_bound({host, std::string(), std::string()});
       it != agents_.end() && std::get<0>(it->first) == host; ++it) {
    Agent& a = it->second;
    if (a.up == nullptr) continue;
    for (prometheus::Gauge* g : {a.up, a.stalled, a.age, a.consecutive, a.heartbeat_age}) {
      g->Set(kNaN);
    }
  }
}

void MetricsModel::set_global_incident(const std::string& host, bool active) {
  if (const auto* h = host_labels(host)) index_.add(global_incident_, *h).Set(active ? 1 : 0);
}

void MetricsModel::set_rejected(proto::Reject reason, std::uint64_t total) {
  auto& last = rejected_last_.at(static_cast<std::size_t>(reason));
  if (total > last) {
    index_.add(rejected_, {{"reason", std::string(proto::to_string(reason))}})
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
void MetricsModel::set_own_peers_refused(std::uint64_t total) {
  if (total > own_refused_last_) {
    index_.add(peers_refused_, with(*host_labels(local_host_), "component", "exporter"))
        .Increment(static_cast<double>(total - own_refused_last_));
    own_refused_last_ = total;
  }
}
void MetricsModel::observe_report_delay(double seconds) {
  if (std::isfinite(seconds)) report_delay_.Observe(std::max(seconds, 0.0));
}
void MetricsModel::set_deferred(std::size_t n) { deferred_.Set(static_cast<double>(n)); }

}  // namespace trading_heal::exporter
