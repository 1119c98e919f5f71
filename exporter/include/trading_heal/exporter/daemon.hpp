// The exporter daemon's shell: wires the subscriptions, the reliable event intake, the audit
// log, the metrics model, the status model and the HTTP API to one loop.
//
// Threads: the loop thread owns the sockets, the audit writer, the metrics model and the
// sequence state. The HTTP pool threads read the status model (under status_mu_), the audit
// files (AuditLog::open_for_read is thread-safe) and the StreamHub (thread-safe). The metrics
// server's threads call metrics().render(), which is thread-safe (MetricsModel).
//
// Exactly-once: a batch of received events is staged, written and fsync'ed as one commit, and
// only then acknowledged. The sequences of a batch are recorded in the SeqTracker as they are
// staged (so the next record of the same sender counts as in order) and rolled back to a
// snapshot if the commit fails. The tracker is persisted to exporter-seq.json on every tick,
// before a rotation, on SIGHUP and at exit, and rebuilt at start from that file plus the audit
// lines themselves (current file and .1): a kill -9 between the audit write and the persist
// cannot duplicate a line.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include <prometheus/registry.h>
#include <tl/expected.hpp>
#include <zmq.hpp>

#include "trading_heal/common/clock.hpp"
#include "trading_heal/common/config.hpp"
#include "trading_heal/common/loop.hpp"
#include "trading_heal/common/peer_guard.hpp"
#include "trading_heal/common/reliable.hpp"
#include "trading_heal/common/request_relay.hpp"
#include "trading_heal/common/zmq.hpp"
#include "trading_heal/exporter/audit_log.hpp"
#include "trading_heal/exporter/fleet_guard.hpp"
#include "trading_heal/exporter/http_api.hpp"
#include "trading_heal/exporter/metrics_model.hpp"
#include "trading_heal/exporter/status_model.hpp"
#include "trading_heal/exporter/stream_hub.hpp"

namespace trading_heal::exporter {

inline constexpr const char* kSeqFileName = "exporter-seq.json";
inline constexpr std::size_t kMaxBatch = 1024;

class Daemon {
 public:
  Daemon(const common::Config& cfg, zmq::context_t& ctx, prometheus::Registry& registry,
         const common::Clock& clock, std::string api_token, common::Identities ids);
  ~Daemon();
  // Opens the audit log, rebuilds the sequence state, binds the sockets and the API.
  tl::expected<void, std::string> start();
  void attach(common::Loop& loop);  // registers handlers, ticks and SIGHUP
  void shutdown();                  // persists state, stops the API
  int api_port() const { return api_port_; }
  // For the metrics server: only render() may be called from other threads.
  const MetricsModel& metrics() const { return metrics_; }

 private:
  // The steps of start(), in order.
  tl::expected<void, std::string> open_audit();
  void restore_sequences();
  tl::expected<void, std::string> open_receiver();
  tl::expected<void, std::string> open_state_subscribers();
  tl::expected<void, std::string> open_fleet_sockets();
  tl::expected<void, std::string> open_model_relay();
  // The state of one SUB socket (the local publishers', or the hosts' at the state endpoint).
  void on_sub(zmq::socket_t& sub);
  void on_events();
  common::MonoTime on_tick(common::MonoTime now);
  void on_sighup();
  void persist_seq();
  void update_counters();
  // The chain's head to the journal (start, rotate, hourly, stop): see audit_heads.hpp.
  void record_head(const char* event);
  // Many hosts: the fleet-wide decisions, audited under the centre's name and told to the hosts.
  void decide_fleet(common::MonoTime now);
  void audit_own(std::vector<proto::Event> events);

  const common::Config& cfg_;
  zmq::context_t& ctx_;
  const common::Clock& clock_;
  common::Identities ids_;
  // Records only from the components' users; state only from their publishers. Before the
  // sockets it guards; served by the loop.
  common::PeerGuard guard_;
  std::string seq_path_;
  std::unique_ptr<AuditLog> audit_;
  common::SeqTracker tracker_;
  std::unique_ptr<common::ReliableReceiver> receiver_;
  std::unique_ptr<zmq::socket_t> sub_;
  std::unique_ptr<zmq::socket_t> hosts_sub_;  // bound at TRADING_HEAL_STATE_ENDPOINT (many hosts)
  proto::RejectCounter sub_rejects_;
  MetricsModel metrics_;
  std::mutex status_mu_;
  StatusModel status_;             // guarded by status_mu_
  FleetGuard fleet_;               // guarded by status_mu_ (read by /status)
  common::Stamper own_stamper_;    // the centre's own audit records (seqs without gaps)
  common::Stamper order_stamper_;  // the centre's orders to the hosts
  FleetDirective told_;            // the order last published
  common::MonoTime next_order_{};
  std::unique_ptr<zmq::socket_t> fleet_pub_;  // bound at TRADING_HEAL_FLEET_ENDPOINT (many hosts)
  // Many hosts: TRADING_HEAL_ANALYSIS_ENDPOINT (bound) to the centre's diagnoser.
  std::unique_ptr<common::RequestRelay> model_relay_;
  StreamHub hub_;
  std::unique_ptr<HttpApi> http_;
  int api_port_ = 0;
  bool seq_dirty_ = false;
  std::uint64_t gaps_reported_ = 0;
  std::uint64_t dups_reported_ = 0;
  common::MonoTime next_head_record_{};
  std::uint64_t write_errors_ = 0;
  common::MonoTime last_error_log_{};
};

}  // namespace trading_heal::exporter
