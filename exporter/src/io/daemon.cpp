#include "trading_heal/exporter/daemon.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "trading_heal/common/curve.hpp"
#include "trading_heal/common/files.hpp"
#include "trading_heal/common/zmq.hpp"
#include "trading_heal/exporter/audit_format.hpp"
#include "trading_heal/exporter/audit_journal.hpp"
#include "trading_heal/exporter/audit_reader.hpp"

namespace trading_heal::exporter {
namespace {

using namespace std::chrono_literals;

// A centre (it collects the hosts' state) has agents of its own only when they are listed: the
// default list would show six agents no one watches.
std::vector<common::AgentSpec> local_agents(const common::Config& cfg) {
  if (!cfg.endpoints.state.empty() && !cfg.agents_listed) return {};
  return cfg.agents;
}

}  // namespace

Daemon::Daemon(const common::Config& cfg, zmq::context_t& ctx, prometheus::Registry& registry,
               const common::Clock& clock, std::string api_token, common::Identities ids)
    : cfg_(cfg),
      ctx_(ctx),
      clock_(clock),
      ids_(std::move(ids)),
      guard_(ctx, "exporter"),
      seq_path_((std::filesystem::path(cfg.data_dir) / kSeqFileName).string()),
      metrics_(registry, local_agents(cfg), cfg.host),
      status_(local_agents(cfg), cfg.interval, clock.mono(), cfg.host),
      fleet_(FleetPolicy::from_config(cfg)),
      own_stamper_("exporter", clock),
      order_stamper_("exporter", clock) {
  ApiOptions api;
  api.listen = cfg.api_listen;
  api.token = std::move(api_token);
  api.hosts = cfg.api_hosts;
  ApiBackend backend;
  backend.health = [this](int* code) {
    bool ok = false;
    std::string body;
    {
      std::lock_guard lock(status_mu_);
      body = status_.health_json(clock_.mono(), &ok).dump();
    }
    *code = ok ? 200 : 503;
    return body + "\n";
  };
  backend.status = [this] {
    std::lock_guard lock(status_mu_);
    auto j = status_.status_json(clock_.mono(), common::to_epoch_seconds(clock_.wall()));
    if (!cfg_.endpoints.fleet.empty()) j["fleet"] = fleet_.to_json();
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  };
  backend.audit = [this](const AuditQuery& q, std::uint64_t* stopped_after) {
    return query_audit(audit_->open_for_read(), q, stopped_after);
  };
  http_ = std::make_unique<HttpApi>(api, backend, hub_);
}

Daemon::~Daemon() = default;

namespace {

// A step of start() that may throw (a socket, a key file): its error as the step's answer.
template <class Step>
tl::expected<void, std::string> caught(Step&& step) {
  try {
    return step();
  } catch (const std::exception& e) {
    return tl::unexpected(std::string(e.what()));
  }
}

}  // namespace

tl::expected<void, std::string> Daemon::start() {
  if (auto r = open_audit(); !r) return r;
  restore_sequences();
  for (auto step : {&Daemon::open_receiver, &Daemon::open_state_subscribers,
                    &Daemon::open_fleet_sockets, &Daemon::open_model_relay}) {
    if (auto r = caught([&] { return (this->*step)(); }); !r) return r;
  }
  auto port = http_->bind();
  if (!port) return tl::unexpected(port.error());
  api_port_ = *port;
  http_->start();
  return {};
}

tl::expected<void, std::string> Daemon::open_audit() {
  const std::string path = (std::filesystem::path(cfg_.data_dir) / kAuditFileName).string();
  auto log = AuditLog::open({path, cfg_.audit_max_bytes, cfg_.audit_keep});
  if (!log) return tl::unexpected(log.error());
  audit_ = std::move(*log);
  if (!audit_->recovered_note().empty()) {
    spdlog::warn("audit torn line recovered {}", audit_->recovered_note());
  }
  audit_->set_before_rotate([this] {
    persist_seq();
    record_head("rotate");  // the last line of the file that becomes .1
  });
  return {};
}

// Sequence state: the persisted file, then every line of the recent audit files (the file may
// lag the audit log by one tick; the lines are the truth).
void Daemon::restore_sequences() {
  if (std::ifstream in(seq_path_); in) {
    std::stringstream text;
    text << in.rdbuf();
    if (auto t = common::SeqTracker::from_json(text.str())) {
      tracker_ = std::move(*t);
    } else {
      spdlog::warn("sequence state unreadable, rebuilding from the audit log path={} error={}",
                   seq_path_, t.error());
    }
  }
  std::uint64_t scanned = 0;
  audit_->scan_recent([&](std::string_view line) {
    if (auto id = line_identity(line)) {
      // As the receiver names senders (ReliableReceiver::scope_by_host).
      const bool local = id->host.empty() || id->host == cfg_.host;
      tracker_.record(local ? id->source : id->host + "/" + id->source, id->boot_id, id->seq);
      ++scanned;
    }
  });
  gaps_reported_ = tracker_.gaps();
  persist_seq();
  spdlog::info("audit log open path={} bytes={} lines_scanned={} senders={}", audit_->path(),
               audit_->size(), scanned, tracker_.size());
  record_head("start");
  next_head_record_ = clock_.mono() + std::chrono::hours(1);
}

tl::expected<void, std::string> Daemon::open_receiver() {
  proto::Limits limits;
  limits.max_bytes = cfg_.max_message_bytes;
  receiver_ = std::make_unique<common::ReliableReceiver>(
      ctx_, cfg_.endpoints.events, tracker_, limits, 0666,
      [this](zmq::socket_t& s) {
        guard_.configure(cfg_);  // the first socket made: keys before any of them
        guard_.protect(s, "events", ids_.allow({"probe", "diagnoser", "actuator"}),
                       cfg_.endpoints.events);
      },
      clock_);
  receiver_->scope_by_host(cfg_.host);
  return {};
}

// The local publishers' state, and with many hosts each host's publishers (over tcp: CURVE,
// keys in hosts.d). A publisher's endpoint taken over by another user (its daemon down, the
// path rebound) is refused at the handshake: no state of it reaches /metrics or /status.
tl::expected<void, std::string> Daemon::open_state_subscribers() {
  const auto state_sub = [this](int hwm) {
    auto s = std::make_unique<zmq::socket_t>(common::make_socket(
        ctx_, zmq::socket_type::sub,
        common::SocketOptions{.max_msg_size = static_cast<std::int64_t>(cfg_.max_message_bytes),
                              .rcvhwm = hwm}));
    s->set(zmq::sockopt::subscribe, "");
    return s;
  };
  sub_ = state_sub(10000);
  std::string tcp_publisher;  // one SUB for every publisher: CURVE if any of them is tcp
  for (const auto& ep : cfg_.endpoints.publishers()) {
    if (ep.rfind("tcp://", 0) == 0) tcp_publisher = ep;
  }
  guard_.protect(*sub_, "state", ids_.allow({"probe", "diagnoser", "actuator"}), tcp_publisher,
                 common::Side::kConnect);
  for (const auto& ep : cfg_.endpoints.publishers()) {
    if (auto r = common::connect_endpoint(*sub_, ep); !r) return tl::unexpected(r.error());
    guard_.watch_connection(*sub_, ep);
  }
  if (cfg_.endpoints.state.empty()) return {};
  hosts_sub_ = state_sub(100000);
  guard_.protect(*hosts_sub_, "hosts", ids_.allow({"probe", "diagnoser", "actuator"}),
                 cfg_.endpoints.state, common::Side::kBind);
  if (auto r = common::bind_endpoint(*hosts_sub_, cfg_.endpoints.state); !r) {
    return tl::unexpected(r.error());
  }
  return {};
}

// Many hosts: the centre's orders, to every host's probe (over tcp: CURVE, keys in hosts.d).
tl::expected<void, std::string> Daemon::open_fleet_sockets() {
  if (cfg_.endpoints.fleet.empty()) return {};
  fleet_pub_ = std::make_unique<zmq::socket_t>(
      common::make_socket(ctx_, zmq::socket_type::pub, common::SocketOptions{.sndhwm = 100}));
  guard_.protect(*fleet_pub_, "fleet", ids_.allow({"probe"}), cfg_.endpoints.fleet,
                 common::Side::kBind);
  if (auto r = common::bind_endpoint(*fleet_pub_, cfg_.endpoints.fleet); !r) {
    return tl::unexpected(r.error());
  }
  return {};
}

// Many hosts: the hosts' model requests (over tcp: CURVE, keys in hosts.d), each tagged with its
// sender's host, to the centre's diagnoser; its answers back.
tl::expected<void, std::string> Daemon::open_model_relay() {
  if (cfg_.endpoints.analysis.empty()) return {};
  if (cfg_.endpoints.model.empty()) {
    return tl::unexpected(std::string(
        "TRADING_HEAL_ANALYSIS_ENDPOINT is set but not TRADING_HEAL_MODEL_ENDPOINT (the "
        "centre's diagnoser, where the exporter passes the hosts' model requests)"));
  }
  const auto protect_front = [this](zmq::socket_t& s) {
    guard_.protect(s, "analysis", ids_.allow({"probe"}), cfg_.endpoints.analysis,
                   common::Side::kBind);
  };
  const auto protect_back = [this](zmq::socket_t& s) {
    guard_.protect(s, "model", ids_.allow({"diagnoser"}), cfg_.endpoints.model,
                   common::Side::kConnect);
  };
  common::RequestRelay::Options o{.name = "analysis relay",
                                  .front = cfg_.endpoints.analysis,
                                  .back = cfg_.endpoints.model,
                                  .tag_host = true,
                                  .local_host = cfg_.host,
                                  .max_bytes = static_cast<std::int64_t>(cfg_.max_message_bytes),
                                  .protect_front = protect_front,
                                  .protect_back = protect_back};
  model_relay_ = std::make_unique<common::RequestRelay>(ctx_, std::move(o));
  guard_.watch_connection(model_relay_->back(), cfg_.endpoints.model);
  return {};
}

void Daemon::attach(common::Loop& loop) {
  guard_.attach(loop);
  loop.on_readable(*sub_, [this] { on_sub(*sub_); });
  if (hosts_sub_) loop.on_readable(*hosts_sub_, [this] { on_sub(*hosts_sub_); });
  if (model_relay_) model_relay_->attach(loop);
  loop.on_readable(receiver_->socket(), [this] { on_events(); });
  loop.on_signal(SIGHUP, [this] { on_sighup(); });
  loop.on_tick(clock_.mono(), [this](common::MonoTime now) { return on_tick(now); });
}

void Daemon::on_sub(zmq::socket_t& sub) {
  const auto now = clock_.mono();
  std::lock_guard lock(status_mu_);
  for (int i = 0; i < 1000; ++i) {
    zmq::message_t frame;
    try {
      if (!sub.recv(frame, zmq::recv_flags::dontwait)) break;
    } catch (const zmq::error_t&) {
      break;
    }
    auto msg = common::decode_frame(frame, sub_rejects_,
                                    proto::Limits{.max_bytes = cfg_.max_message_bytes});
    if (!msg) continue;
    // The host bound to the sender's key, never what the message says.
    const std::string host = common::host_of_peer(common::user_id_of(frame).c_str(), cfg_.host);
    const auto& env = msg->env;
    if (const auto* r = std::get_if<proto::HealthReport>(&msg->body)) {
      if (&sub == hosts_sub_.get()) {
        metrics_.observe_report_delay(common::to_epoch_seconds(clock_.wall()) - env.ts);
      }
      metrics_.on_health(*r, host);
      status_.on_health(*r, host, env.ts, now);
      if (fleet_pub_ && &sub == hosts_sub_.get()) fleet_.on_health(host, r->agent, r->verdict, now);
    } else if (const auto* hb = std::get_if<proto::Heartbeat>(&msg->body)) {
      metrics_.on_heartbeat(*hb, env.boot_id, host);
      status_.on_component(host, hb->component.empty() ? env.source : hb->component,
                           hb->interval_seconds, now);
      if (fleet_pub_ && &sub == hosts_sub_.get() && hb->component == "probe") {
        if (auto it = hb->stats.find("host"); it != hb->stats.end()) {
          if (const auto* n = std::get_if<std::string>(&it->second)) fleet_.on_host_name(host, *n);
        }
      }
      if (hb->component == "actuator") {
        if (auto it = hb->stats.find("global_incident"); it != hb->stats.end()) {
          if (const auto* b = std::get_if<bool>(&it->second)) status_.set_global_incident(host, *b);
        }
      }
    } else if (const auto* e = std::get_if<proto::Event>(&msg->body)) {
      status_.on_component(host, env.source, 0, now);
      if (e->action == proto::to_string(proto::Action::kAgentState)) {
        status_.on_agent_state(*e, host, env.ts);
        if (fleet_pub_ && &sub == hosts_sub_.get()) {
          if (auto it = e->fields.find("state"); it != e->fields.end()) {
            if (const auto* st = std::get_if<std::string>(&it->second))
              fleet_.on_agent_state(host, e->agent, *st);
          }
        }
      }
    } else {
      status_.on_component(host, env.source, 0, now);
    }
  }
}

void Daemon::on_events() {
  const auto now = clock_.mono();
  const common::SeqTracker snapshot = tracker_;
  std::vector<common::ReliableReceiver::Delivery> batch;
  std::vector<std::string> lines;
  while (batch.size() < kMaxBatch) {
    auto d = receiver_->receive();
    if (!d) break;
    if (std::holds_alternative<proto::Event>(d->msg.body)) {
      lines.push_back(audit_->stage(d->msg, common::host_of_peer(d->user_id.c_str(), cfg_.host)));
    } else {
      lines.emplace_back();  // not an audit record: acknowledged with the batch, not written
    }
    // Provisional, so the sender's next record counts as in order; undone if the commit fails.
    tracker_.record(d->tracker_source, d->msg.env.boot_id, d->msg.env.seq);
    batch.push_back(std::move(*d));
  }
  if (batch.empty()) return;
  if (auto r = audit_->commit(); !r) {
    tracker_ = snapshot;
    for (const auto& d : batch) receiver_->refuse(d, "audit write failed");
    ++write_errors_;
    metrics_.add_audit_write_error();
    if (write_errors_ == 1 || now - last_error_log_ >= 10s) {
      spdlog::error("audit write failed error=\"{}\" events_refused={} failures_total={}",
                    r.error(), batch.size(), write_errors_);
      last_error_log_ = now;
    }
    return;
  }
  std::uint64_t written = 0;
  std::lock_guard lock(status_mu_);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto& d = batch[i];
    receiver_->accept(d);
    const std::string host = common::host_of_peer(d.user_id.c_str(), cfg_.host);
    status_.on_component(host, d.msg.env.source, 0, now);
    if (const auto* e = std::get_if<proto::Event>(&d.msg.body)) {
      metrics_.on_event(*e, host);
      if (fleet_pub_ && host != cfg_.host) {
        fleet_.on_record(host, *e, d.msg.env.ts, common::to_epoch_seconds(clock_.wall()));
      }
      if (e->action == "global_incident") {
        auto it = e->fields.find("active");
        const bool* b = it == e->fields.end() ? nullptr : std::get_if<bool>(&it->second);
        status_.set_global_incident(host, b == nullptr || *b);
      }
      hub_.publish(std::move(lines[i]));
      ++written;
    }
  }
  metrics_.add_audit_written(written);
  seq_dirty_ = true;
}

common::MonoTime Daemon::on_tick(common::MonoTime now) {
  {
    std::lock_guard lock(status_mu_);
    const auto silent = status_.silent_components(now);
    for (const auto& [host, up] : status_.hosts(now)) {
      metrics_.set_host_up(host, up);
      const std::string prefix = host == cfg_.host ? std::string() : host + "/";
      for (const auto& c : kWatchedComponents) {
        if (!status_.heard_from(host, c)) continue;
        metrics_.set_component_up(
            host, c, std::find(silent.begin(), silent.end(), prefix + c) == silent.end());
      }
    }
  }
  if (fleet_pub_) decide_fleet(now);
  update_counters();
  if (seq_dirty_) persist_seq();
  if (now >= next_head_record_) {
    record_head("hourly");
    next_head_record_ = now + std::chrono::hours(1);
  }
  const auto step = std::min<common::MonoTime::duration>(
      std::chrono::duration_cast<common::MonoTime::duration>(cfg_.interval / 2), 1s);
  return now + std::max<common::MonoTime::duration>(step, 50ms);
}

void Daemon::update_counters() {
  for (std::size_t i = 0; i < proto::kRejectCount; ++i) {
    const auto r = static_cast<proto::Reject>(i);
    metrics_.set_rejected(r, sub_rejects_.count(r) + receiver_->rejects().count(r));
  }
  if (tracker_.gaps() > gaps_reported_) {
    metrics_.add_gaps(tracker_.gaps() - gaps_reported_);
    gaps_reported_ = tracker_.gaps();
  }
  metrics_.set_own_peers_refused(guard_.refused());
  if (receiver_->duplicates() > dups_reported_) {
    metrics_.add_duplicates(receiver_->duplicates() - dups_reported_);
    dups_reported_ = receiver_->duplicates();
  }
}

void Daemon::on_sighup() {
  guard_.reload_hosts();
  persist_seq();
  if (auto r = audit_->reopen(); !r) {
    spdlog::error("audit reopen failed error=\"{}\"", r.error());
    return;
  }
  spdlog::info("audit reopened path={} bytes={}{}", audit_->path(), audit_->size(),
               audit_->recovered_note().empty() ? "" : " " + audit_->recovered_note());
}

void Daemon::persist_seq() {
  if (auto r = common::replace_file(seq_path_, tracker_.to_json()); r) {
    seq_dirty_ = false;
  } else {
    spdlog::warn("sequence state not saved path={} error=\"{}\"", seq_path_, r.error());
  }
}

void Daemon::shutdown() {
  if (http_) http_->stop();
  if (audit_) {
    persist_seq();
    record_head("stop");
  }
}

void Daemon::record_head(const char* event) {
  if (!record_audit_head(audit_->path(), audit_->last_hash(), event)) {
    spdlog::warn("audit head not recorded in the journal (unreachable) head={} path={} event={}",
                 audit_->last_hash(), audit_->path(), event);
  }
}

}  // namespace trading_heal::exporter
