// The Prometheus metrics of trading-heal (docs/reference.md "Metrics"), fed with health reports,
// heartbeats and audit events. Owns nothing but references into a prometheus::Registry made in
// main. No I/O, no clock.
//
// Labels. Per-agent series carry `symbol` (BTC-USDT) and, only for agents whose profile is not
// `default`, also `profile` — as docs/reference.md says ("Agents with a profile also carry a
// profile label"), so the queries users already have (`trading_agent_up{symbol="BTC-USDT"}`) keep
// matching the default agents. Prometheus allows series of one family to have different label
// names (an absent label equals the empty value) and promtool accepts it; within one family a
// (symbol) series and a (symbol, profile) series never collide. The label name `instance` is
// never used. Audit events without a symbol (global_incident) have symbol="".
//
// Label values are bounded: symbols must look like symbols and at most kMaxAgents agents are
// tracked; actions must be [a-z_]{1,32} and at most kMaxActions distinct ones, others count as
// action="other".
//
// Scraping. The model registers its families in the prometheus::Registry (so Registry::Collect
// and prometheus' TextSerializer still see every series), and also keeps its own index of
// the series it created, which render() writes in the text format directly: the same lines
// as TextSerializer(registry.Collect()) — names, labels, help, types, value formatting
// (%.16g, Nan, +Inf) and family order (counters, gauges, histograms, each in registration
// order); only the order of series within a family differs (sorted by labels here, hash order
// there), which the format leaves free. Each series' line up to its value is made once, when
// the series is created. 1000 agents (~15k series): render() 4.2 ms, Collect + TextSerializer
// 33.7 ms (bench/exporter/README.md).
//
// Thread-safety: the update methods are called by the loop thread only. render() may be called
// from any thread at any time: the series index is guarded by an internal mutex (taken by the
// loop thread only when a series is created), and the values are the prometheus objects'
// atomics.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "trading_heal/common/config.hpp"
#include "trading_heal/proto/actions.hpp"
#include "trading_heal/proto/codec.hpp"
#include "trading_heal/proto/messages.hpp"

namespace trading_heal::exporter {

inline constexpr std::size_t kMaxAgents = 10000;
// The actions whose trading_selfheal_actions_total series every configured agent has from the
// start (others appear with their first event).
inline constexpr proto::Action kAgentActions[] = {
    proto::Action::kRestart,       proto::Action::kRecovered,   proto::Action::kRateLimited,
    proto::Action::kOllamaError,   proto::Action::kDiagnosis,   proto::Action::kExhausted,
    proto::Action::kRestartFailed, proto::Action::kWouldRestart};
inline constexpr std::size_t kMaxActions = 64;
// Components whose liveness is exported (the exporter reports itself as up).
inline const std::vector<std::string> kComponents = {"probe", "diagnoser", "actuator", "exporter"};

// Event `fields` the model reads (the contract with the senders):
//   diagnosis / ollama_error: latency_seconds (number) — duration of the LLM call;
//   diagnosis: source (or diagnosis_source) = rules | cache | llm — rules/cache are not Ollama
//     analyses and are not counted in trading_ollama_analyze_total;
//   global_incident: active (bool, default true) — false ends the incident.
// Heartbeat stats read: probe `cycle_seconds`; actuator `global_incident` (bool or 0/1);
//   probe and actuator `bus_reconnects` (systemd bus connections lost since the sender's start,
//   cumulative: a lost heartbeat loses nothing, a new boot id starts again from 0).
//
// Hosts. Every per-agent and per-component series carries `host`: the host the record came from
// (the name bound to its sender's CURVE key, or `local_host` for this machine's components).
// At most kMaxHosts hosts; the configured agents are the local host's.
inline constexpr std::size_t kMaxHosts = 256;

class MetricsModel {
 public:
  MetricsModel(prometheus::Registry& registry, const std::vector<common::AgentSpec>& agents,
               std::string local_host = "localhost");

  void on_health(const proto::HealthReport& r, const std::string& host);
  // `boot_id`: the sender's (envelope), to tell a restarted sender's counts from older ones.
  void on_heartbeat(const proto::Heartbeat& hb, const std::string& boot_id,
                    const std::string& host);
  // A committed audit event (each exactly once).
  void on_event(const proto::Event& e, const std::string& host);
  void set_component_up(const std::string& host, const std::string& component, bool up);
  // trading_selfheal_host_up{host}: heard from within its link's silence limit.
  void set_host_up(const std::string& host, bool up);
  void set_global_incident(const std::string& host, bool active);
  const std::string& local_host() const { return local_host_; }
  // The same for the local host.
  void on_health(const proto::HealthReport& r) { on_health(r, local_host_); }
  void on_heartbeat(const proto::Heartbeat& hb, const std::string& boot_id = {}) {
    on_heartbeat(hb, boot_id, local_host_);
  }
  void on_event(const proto::Event& e) { on_event(e, local_host_); }
  void set_component_up(const std::string& component, bool up) {
    set_component_up(local_host_, component, up);
  }
  void set_global_incident(bool active) { set_global_incident(local_host_, active); }
  // Cumulative total of rejections for a reason, summed over the daemon's receivers
  // (increments the counter by the difference).
  void set_rejected(proto::Reject reason, std::uint64_t total);
  void add_gaps(std::uint64_t n);
  void add_audit_written(std::uint64_t n);
  void add_audit_write_error();
  void add_duplicates(std::uint64_t n);
  void set_deferred(std::size_t n);
  // The exporter's own refused peers (cumulative total; the others' come in heartbeats).
  void set_own_peers_refused(std::uint64_t total);
  // trading_selfheal_report_delay_seconds: a health report from another host, from its
  // envelope's time (the host's wall clock when its link sent it) to its handling here (this
  // host's wall clock). A negative delay (the host's clock ahead) counts as 0; a non-finite one
  // is not counted.
  void observe_report_delay(double seconds);

  // The exposition of every series of the model (text format 0.0.4). Thread-safe.
  std::string render() const;
  void render(std::string& out) const;  // appends it to `out`

  std::size_t agents() const { return agents_.size(); }
  std::uint64_t dropped_labels() const { return dropped_labels_; }

 private:
  struct Agent {
    prometheus::Labels labels;
    prometheus::Gauge* up = nullptr;  // gauges appear with the first health report
    prometheus::Gauge* stalled = nullptr;
    prometheus::Gauge* age = nullptr;
    prometheus::Gauge* consecutive = nullptr;
    prometheus::Gauge* rss = nullptr;
    prometheus::Gauge* cpu = nullptr;
    prometheus::Gauge* heartbeat_age = nullptr;
    prometheus::Gauge* stopped = nullptr;
    prometheus::Gauge* stall_threshold = nullptr;
    prometheus::Counter* unit_restarts = nullptr;
    std::optional<std::uint32_t> last_n_restarts;  // systemd's NRestarts in the last report
    prometheus::Gauge* latency = nullptr;
    prometheus::Counter* analyze = nullptr;
    prometheus::Counter* restarts = nullptr;
  };
  Agent* agent(const std::string& host, const std::string& symbol, const std::string& profile);
  // A host's label set ({host}), or nullptr past kMaxHosts or for an invalid name.
  const prometheus::Labels* host_labels(const std::string& host);
  prometheus::Labels with(const prometheus::Labels& base, const char* key, std::string value);
  // Adds to `counter` what a cumulative per-boot `total` of `component` grew by.
  void add_cumulative(prometheus::Counter& counter, const std::string& component,
                      const std::string& boot_id, std::uint64_t total);
  prometheus::Counter* action_counter(const std::string& action, const Agent* a,
                                      const prometheus::Labels& host);
  void ensure_gauges(Agent& a);

  // The series index render() walks: one entry a family, in the registry's collect order.
  struct Entry {
    std::string name;
    std::string head;  // "# HELP ...\n# TYPE ...\n"
    prometheus::MetricType type;
    // Per series its line up to the value ("name{a=\"x\"} "), made once, and its metric.
    std::map<prometheus::Labels, std::pair<std::string, const prometheus::Counter*>> counters;
    std::map<prometheus::Labels, std::pair<std::string, const prometheus::Gauge*>> gauges;
    const prometheus::Histogram* histogram = nullptr;  // histograms have no labels
  };
  class Index {
   public:
    // Registers the family in `registry` and in the index.
    template <class T>
    prometheus::Family<T>& family(prometheus::Registry& registry, const std::string& name,
                                  const std::string& help);
    // Family::Add, remembered in the index.
    template <class T, class... Args>
    T& add(prometheus::Family<T>& family, const prometheus::Labels& labels, Args&&... args);
    void render(std::string& out) const;

   private:
    mutable std::mutex mu_;
    mutable std::size_t last_size_ = 0;  // guarded by mu_: the previous render's size
    std::vector<Entry> entries_;         // guarded by mu_ (the vector is filled in the constructor)
    std::map<const void*, std::size_t> entry_of_;
  };
  Index index_;  // declared first: the families below are made through it

  prometheus::Family<prometheus::Gauge>& up_;
  prometheus::Family<prometheus::Gauge>& stalled_;
  prometheus::Family<prometheus::Gauge>& age_;
  prometheus::Family<prometheus::Counter>& analyze_;
  prometheus::Family<prometheus::Gauge>& latency_;
  prometheus::Family<prometheus::Counter>& restarts_;
  prometheus::Family<prometheus::Gauge>& consecutive_;
  prometheus::Family<prometheus::Counter>& actions_;
  prometheus::Family<prometheus::Histogram>& duration_family_;
  prometheus::Histogram& duration_;
  prometheus::Family<prometheus::Gauge>& rss_;
  prometheus::Family<prometheus::Gauge>& cpu_;
  prometheus::Family<prometheus::Gauge>& heartbeat_age_;
  prometheus::Family<prometheus::Gauge>& stopped_;
  prometheus::Family<prometheus::Gauge>& stall_threshold_;
  prometheus::Family<prometheus::Counter>& unit_restarts_;
  prometheus::Family<prometheus::Gauge>& global_incident_;
  prometheus::Family<prometheus::Gauge>& component_up_;
  prometheus::Family<prometheus::Gauge>& probe_cycle_;
  prometheus::Family<prometheus::Gauge>& host_up_;
  prometheus::Family<prometheus::Counter>& rejected_;
  prometheus::Counter& gaps_;
  prometheus::Counter& audit_written_;
  prometheus::Counter& audit_errors_;
  prometheus::Counter& duplicates_;
  prometheus::Gauge& deferred_;
  prometheus::Family<prometheus::Counter>& bus_reconnects_;
  prometheus::Family<prometheus::Counter>& peers_refused_;
  prometheus::Histogram& report_delay_;
  std::uint64_t own_refused_last_ = 0;

  std::string local_host_;
  std::map<std::string, prometheus::Labels> hosts_;  // host -> {host}
  std::map<std::tuple<std::string, std::string, std::string>, Agent>
      agents_;  // host, symbol, profile
  std::set<std::string> actions_seen_;
  std::uint64_t dropped_labels_ = 0;
  std::vector<std::uint64_t> rejected_last_;
  // Per (component, counter name): the boot id and the total last seen from it.
  std::map<std::pair<std::string, const prometheus::Counter*>,
           std::pair<std::string, std::uint64_t>>
      cumulative_last_;
};

}  // namespace trading_heal::exporter
