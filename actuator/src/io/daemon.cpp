#include "trading_heal/actuator/daemon.hpp"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <type_traits>
#include <unordered_map>
#include <variant>

#include <spdlog/spdlog.h>

#include "trading_heal/actuator/engine.hpp"
#include "trading_heal/actuator/state_file.hpp"
#include "trading_heal/actuator/worker.hpp"
#include "trading_heal/common/loop.hpp"
#include "trading_heal/common/notify.hpp"
#include "trading_heal/common/peer_guard.hpp"
#include "trading_heal/common/reliable.hpp"
#include "trading_heal/common/zmq.hpp"
#include "trading_heal/proto/actions.hpp"
#include "trading_heal/proto/json.hpp"

namespace trading_heal::actuator {
namespace {

using common::MonoTime;

class Daemon {
 public:
  Daemon(const common::Config& cfg, const DaemonOptions& opts, zmq::context_t& ctx,
         common::SignalFd& signals, common::Identities ids)
      : cfg_(cfg),
        opts_(opts),
        signals_(signals),
        engine_(cfg.agents, Policy::from_config(cfg), std::random_device{}()),
        pub_stamp_("actuator", clock_),
        event_stamp_("actuator", clock_),
        limits_{.max_bytes = cfg.max_message_bytes},
        ids_(std::move(ids)),
        guard_(ctx, "actuator"),
        sub_(common::make_socket(
            ctx, zmq::socket_type::sub,
            {.max_msg_size = static_cast<std::int64_t>(cfg.max_message_bytes)})),
        pub_(common::make_socket(ctx, zmq::socket_type::pub)),
        control_(common::make_socket(
            ctx, zmq::socket_type::router,
            {.max_msg_size = static_cast<std::int64_t>(cfg.max_message_bytes)})),
        // Diagnoses from the diagnoser's user only; commands from the operators (and root).
        diagnoses_(
            ctx, cfg.endpoints.diagnosis, seqs_, limits_, 0666,
            [this](zmq::socket_t& s) {
              guard_.configure(cfg_);  // the first socket made: keys before any of them
              guard_.protect(s, "diagnosis", ids_.allow({"diagnoser"}), cfg_.endpoints.diagnosis);
            },
            clock_),
        state_path_(cfg.data_dir + "/actuator-state.json") {
    std::filesystem::create_directories(cfg.data_dir);
    auto ob = common::Outbox::open(cfg.data_dir + "/actuator-events.outbox");
    if (!ob) throw std::runtime_error("outbox: " + ob.error());
    outbox_ = std::move(*ob);
    if (!outbox_->recovered_note().empty()) {
      spdlog::warn("outbox recovered note=\"{}\"", outbox_->recovered_note());
    }
    sender_ = std::make_unique<common::ReliableSender>(
        ctx, cfg.endpoints.records(), *outbox_, event_stamp_, std::chrono::seconds(2), 256,
        [this](zmq::socket_t& s) {
          guard_.protect(s, "events", ids_.allow({cfg_.endpoints.records_peer()}),
                         cfg_.endpoints.records(), common::Side::kConnect);
        });
    sub_.set(zmq::sockopt::subscribe, "");
    // Health reports count only from the probe's user: a process that took the endpoint over
    // (the probe killed, the path rebound) is refused at the handshake.
    guard_.protect(sub_, "health", ids_.allow({"probe"}), cfg.endpoints.health,
                   common::Side::kConnect);
    guard_.protect(pub_, "pub", ids_.allow({"exporter"}, true), cfg.endpoints.actuator_pub);
    guard_.protect(control_, "control", ids_.allow({}, true), cfg.endpoints.actuator_control);
    bind(pub_, cfg.endpoints.actuator_pub);
    bind(control_, cfg.endpoints.actuator_control);
    if (auto r = common::connect_endpoint(sub_, cfg.endpoints.health); !r)
      throw std::runtime_error(r.error());
    guard_.watch_connection(sub_, cfg.endpoints.health);
    guard_.watch_connection(sender_->socket(), cfg.endpoints.records());
    load_state();
    RestartOptions ro;
    ro.dry_run = cfg.dry_run;
    ro.pre_hook = cfg.pre_restart_hook;
    ro.post_hook = cfg.post_restart_hook;
    ro.hook_timeout = cfg.hook_timeout;
    ro.job_timeout = opts.restart_timeout;
    ro.verify_timeout = opts.restart_timeout;
    const auto scope = cfg.scope;
    const auto backend = cfg.restart_backend;
    worker_ = std::make_unique<RestartWorker>(
        [scope, backend, ro]() -> tl::expected<std::unique_ptr<Restarter>, std::string> {
          std::unique_ptr<UnitManager> m;
          if (backend == common::RestartBackend::kDbus) {
            m = make_dbus_manager(scope);
          } else {
            m = make_systemctl_manager(scope);
          }
          return std::make_unique<Restarter>(std::move(m), ro);
        });
  }

  int run() {
    common::Loop loop(signals_);
    loop_ = &loop;
    guard_.attach(loop);
    loop.on_readable(sub_, [this] { on_health(); });
    loop.on_readable(diagnoses_.socket(), [this] { on_diagnoses(); });
    loop.on_readable(control_, [this] { on_control(); });
    loop.on_readable(sender_->socket(), [this] { sender_->on_readable(clock_.mono()); });
    loop.on_fd(worker_->fd(), [this] { on_results(); });
    loop.on_signal(SIGHUP, [this] {
      guard_.reload_hosts();
      spdlog::info("SIGHUP: the allow-list of host keys read again; other settings need a restart");
    });
    loop.on_tick(clock_.mono(), [this](MonoTime now) { return tick(now); });
    spdlog::info("actuator ready agents={} scope={} backend={} dry_run={} mode={} state={}",
                 cfg_.agents.size(), common::to_string(cfg_.scope),
                 cfg_.restart_backend == common::RestartBackend::kDbus ? "dbus" : "systemctl",
                 cfg_.dry_run, cfg_.shadow ? "shadow" : "enforce", state_path_);
    common::notify_ready("watching " + std::to_string(cfg_.agents.size()) + " agents");
    const int sig = loop.run();
    common::notify_stopping();
    save(now());
    spdlog::info("actuator stopping signal={}", sig);
    loop_ = nullptr;
    return common::kExitOk;
  }

 private:
  static void bind(zmq::socket_t& s, const std::string& ep) {
    if (auto r = common::bind_endpoint(s, ep); !r) throw std::runtime_error(r.error());
  }

  Now now() const { return Now{clock_.mono(), clock_.wall()}; }

  void load_state() {
    auto text = read_state_file(state_path_);
    std::string problem;
    if (!text) {
      problem = text.error();
    } else if (*text) {
      try {
        auto j = nlohmann::json::parse(**text);
        if (auto r = engine_.load_json(j, now()); !r) problem = r.error();
      } catch (const nlohmann::json::exception& e) {
        problem = std::string("not JSON: ") + e.what();
      }
    }
    if (problem.empty()) {
      if (text && *text) spdlog::info("state loaded path={}", state_path_);
      return;
    }
    const auto aside = quarantine_state_file(
        state_path_,
        std::to_string(static_cast<long long>(common::to_epoch_seconds(clock_.wall()))));
    spdlog::error("state file corrupt, starting empty path={} moved_to={} error=\"{}\"",
                  state_path_, aside, problem);
    proto::Event e;
    e.action = proto::name(proto::Action::kStateCorrupt);
    e.success = false;
    e.detail = problem;
    e.fields["path"] = state_path_;
    e.fields["moved_to"] = aside;
    send_event(std::move(e), clock_.mono());
  }

  void save(Now t) {
    if (!engine_.take_dirty()) return;
    if (auto r = write_state_file(state_path_, engine_.to_json(t).dump()); !r) {
      ++state_write_errors_;
      spdlog::error("state write failed error=\"{}\" count={}", r.error(), state_write_errors_);
    }
  }

  void send_event(proto::Event e, MonoTime t) {
    spdlog::info("event action={} agent={} success={} detail=\"{}\"", e.action, e.agent, e.success,
                 e.detail);
    if (auto r = sender_->send(std::move(e), t); !r) {
      ++event_errors_;
      spdlog::error("event not stored error=\"{}\" count={}", r.error(), event_errors_);
    }
  }

  // `about`: the agent the triggering message named, if any; its state and that of every agent
  // a decision names are published at once when they changed (not only every interval), so the
  // tap and /status see each transition, even a RESTARTING that lasts 40 ms.
  void apply(Decisions ds, Now t, const std::string& about = {}) {
    // State first: the restart history is durable before the restart is issued or told.
    save(t);
    std::vector<std::string> touched;
    if (!about.empty()) touched.push_back(about);
    for (auto& d : ds) {
      if (auto* r = std::get_if<RestartDecision>(&d)) {
        spdlog::warn("{}", r->log_line);
        touched.push_back(r->agent);
        worker_->submit(std::move(*r));
      } else {
        auto& e = std::get<proto::Event>(d);
        if (e.action == "would_restart")
          spdlog::warn("{}", e.detail);  // the dry run's SELF-HEAL line
        if (e.action == proto::to_string(proto::Action::kFleetHold)) {
          spdlog::warn("fleet hold {}: {} incident={} reason=\"{}\"",
                       std::get<std::string>(e.fields.at("state")), e.detail,
                       std::get<std::string>(e.fields.at("incident")), e.reason);
        }
        if (!e.agent.empty()) touched.push_back(e.agent);
        send_event(std::move(e), t.mono);
      }
    }
    for (const auto& agent : touched) publish_state_if_changed(agent, t);
    if (loop_ != nullptr) {
      if (auto next = engine_.next_deadline(t)) loop_->wake_at(*next);
    }
  }

  // What a subscriber would see change: the state, the restart count, the diagnosis, the
  // global incident membership (not the failure count, which moves every cycle).
  static std::string state_signature(const proto::Event& e) {
    std::string sig;
    for (const char* k : {"state", "restarts_hour", "last_diagnosis", "global_incident", "held"}) {
      if (auto it = e.fields.find(k); it != e.fields.end()) {
        std::visit(
            [&](const auto& v) {
              if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::string>) {
                sig += v;
              } else {
                sig += std::to_string(v);
              }
            },
            it->second);
      }
      sig += '|';
    }
    return sig;
  }

  void publish_state_if_changed(const std::string& agent, Now t) {
    auto e = engine_.agent_state(agent, t);
    if (!e) return;
    auto sig = state_signature(*e);
    auto& last = published_[agent];
    if (sig == last) return;
    last = std::move(sig);
    common::send_message(pub_, pub_stamp_.stamp(std::move(*e)));
  }

  void note_rejects(std::uint64_t before) {
    const auto& c = engine_.counters();
    const auto after = c.rejected_unknown_agent + c.rejected_unit_mismatch;
    if (after > before) {
      spdlog::warn("message rejected: names no configured agent rejected_total={}", after);
    }
  }

  void on_health() {
    for (int i = 0; i < 1000; ++i) {
      zmq::message_t frame;
      try {
        if (!sub_.recv(frame, zmq::recv_flags::dontwait)) break;
      } catch (const zmq::error_t&) {
        break;
      }
      const auto before = rejects_.total();
      auto msg = common::decode_frame(frame, rejects_, limits_);
      if (!msg) {
        if (rejects_.total() > before) {
          spdlog::debug("health frame rejected reason={} rejected_total={}",
                        proto::to_string(msg.error().reason), rejects_.total());
        }
        continue;
      }
      const Now t = now();
      const auto& c = engine_.counters();
      const auto rej = c.rejected_unknown_agent + c.rejected_unit_mismatch;
      if (auto* r = std::get_if<proto::HealthReport>(&msg->body)) {
        apply(engine_.on_health(*r, t), t, r->agent);
      } else if (auto* hb = std::get_if<proto::Heartbeat>(&msg->body);
                 hb != nullptr && msg->env.source == "probe") {
        apply(engine_.on_probe_heartbeat(*hb, t), t);
      } else if (auto* e = std::get_if<proto::Event>(&msg->body);
                 e != nullptr && msg->env.source == "probe") {
        apply(engine_.on_fleet_directive(*e, t), t);  // many hosts: the centre's order
      }
      note_rejects(rej);
    }
  }

  void on_diagnoses() {
    while (auto d = diagnoses_.receive()) {
      const Now t = now();
      if (auto* diag = std::get_if<proto::Diagnosis>(&d->msg.body)) {
        bool accepted = false;
        auto ds = engine_.on_diagnosis(*diag, t, &accepted);
        if (accepted) {
          spdlog::info("diagnosis received agent={} cause=\"{}\" source={}", diag->agent,
                       diag->cause, diag->source);
        } else {
          spdlog::warn("diagnosis rejected: unknown agent rejected_total={}",
                       engine_.counters().rejected_unknown_agent);
        }
        apply(std::move(ds), t, accepted ? diag->agent : std::string());
      } else {
        ++wrong_kind_;
      }
      diagnoses_.accept(*d);  // handled (or refused for good): never resent
    }
  }

  void on_control() {
    common::serve_commands(
        control_, rejects_, limits_, pub_stamp_,
        [this](const proto::Message& msg, const proto::Command& c, proto::Ack& ack) {
          const Now t = now();
          auto res = engine_.on_command(c, t);
          ack.ok = res.ok;
          ack.detail = res.detail;
          spdlog::info("command verb={} agent={} ok={} source={}", proto::to_string(c.verb),
                       c.agent, res.ok, msg.env.source);
          apply(std::move(res.decisions), t, res.ok ? c.agent : std::string());
        });
  }

  void on_results() {
    for (auto& r : worker_->take_results()) {
      const Now t = now();
      switch (r.outcome) {
        case Outcome::kRestarted:
          spdlog::info(
              "restart done agent={} old_pid={} new_pid={} elapsed_s={:.3f} dry_run={} "
              "detail=\"{}\"",
              r.agent, r.old_pid, r.new_pid, r.elapsed_seconds, r.dry_run, r.detail);
          break;
        case Outcome::kFailed:
          spdlog::error("restart failed agent={} elapsed_s={:.3f} detail=\"{}\"", r.agent,
                        r.elapsed_seconds, r.detail);
          break;
        case Outcome::kDeferred:
          spdlog::warn("restart deferred agent={} detail=\"{}\"", r.agent, r.detail);
          break;
      }
      apply(engine_.on_restart_result(r, t), t, r.agent);
    }
  }

  MonoTime tick(MonoTime mono) {
    const Now t{mono, clock_.wall()};
    apply(engine_.on_tick(t), t);
    MonoTime next = sender_->on_tick(mono);
    if (mono >= next_publish_) {
      publish(t);
      next_publish_ = mono + cfg_.interval;
    }
    next = std::min(next, next_publish_);
    if (auto d = engine_.next_deadline(t))
      next = std::min(next, std::max(*d, mono + std::chrono::milliseconds(1)));
    return next;
  }

  void publish(Now t) {
    const auto& c = engine_.counters();
    proto::Heartbeat hb;
    hb.component = "actuator";
    hb.pid = static_cast<std::uint32_t>(::getpid());
    hb.interval_seconds = std::chrono::duration<double>(cfg_.interval).count();
    auto i = [](std::uint64_t v) { return static_cast<std::int64_t>(v); };
    hb.stats = {{"health_reports", i(c.health_reports)},
                {"diagnoses", i(c.diagnoses)},
                {"commands", i(c.commands)},
                {"rejected.unknown_agent", i(c.rejected_unknown_agent)},
                {"rejected.unit_mismatch", i(c.rejected_unit_mismatch)},
                {"rejected.decode", i(rejects_.total() + diagnoses_.rejects().total())},
                {"rejected.wrong_kind", i(wrong_kind_)},
                {"restarts_issued", i(c.restarts_issued)},
                {"restarts_ok", i(c.restarts_ok)},
                {"restarts_failed", i(c.restarts_failed)},
                {"restarts_deferred", i(c.restarts_deferred)},
                {"would_restart", i(c.would_restart)},
                {"restarts_ineffective", i(c.restarts_ineffective)},
                {"rate_limited", i(c.rate_limited)},
                {"exhausted", i(c.exhausted)},
                {"left_to_systemd", i(c.left_to_systemd)},
                {"global_incidents", i(c.global_incidents)},
                {"global_incident", engine_.global().active},
                {"fleet_hold", engine_.fleet().holding},
                {"restart_queue", i(worker_->queued())},
                {"bus_reconnects", i(worker_->bus_losses())},
                {"peers_refused", i(guard_.refused())},
                {"outbox_pending", i(sender_->pending())},
                {"events_acked", i(sender_->acked())},
                {"diagnosis_duplicates", i(diagnoses_.duplicates())},
                {"state_write_errors", i(state_write_errors_)},
                {"dry_run", cfg_.dry_run}};
    common::send_message(pub_, pub_stamp_.stamp(std::move(hb)));
    for (auto& e : engine_.agent_states(t)) {
      published_[e.agent] = state_signature(e);
      common::send_message(pub_, pub_stamp_.stamp(std::move(e)));
    }
  }

  const common::Config& cfg_;
  DaemonOptions opts_;
  common::SignalFd& signals_;
  common::SystemClock clock_;
  Engine engine_;
  common::Stamper pub_stamp_;
  common::Stamper event_stamp_;
  proto::Limits limits_;
  proto::RejectCounter rejects_;
  common::Identities ids_;
  common::PeerGuard guard_;  // before the sockets it guards
  zmq::socket_t sub_;
  zmq::socket_t pub_;
  zmq::socket_t control_;
  common::SeqTracker seqs_;
  common::ReliableReceiver diagnoses_;
  std::unique_ptr<common::Outbox> outbox_;
  std::unique_ptr<common::ReliableSender> sender_;
  std::unique_ptr<RestartWorker> worker_;
  std::string state_path_;
  common::Loop* loop_ = nullptr;
  MonoTime next_publish_{};
  std::unordered_map<std::string, std::string> published_;  // agent -> state_signature sent
  std::uint64_t state_write_errors_ = 0;
  std::uint64_t event_errors_ = 0;
  std::uint64_t wrong_kind_ = 0;
};

}  // namespace

int run_daemon(const common::Config& cfg, const DaemonOptions& opts, zmq::context_t& ctx,
               common::SignalFd& signals) {
  auto ids = common::resolve_identities(cfg);
  if (!ids) {
    spdlog::critical("configuration error: {}", ids.error().to_string());
    return common::kExitConfig;
  }
  try {
    Daemon d(cfg, opts, ctx, signals, std::move(*ids));
    return d.run();
  } catch (const std::exception& e) {
    spdlog::critical("actuator cannot start error=\"{}\"", e.what());
    return common::kExitFailure;
  }
}

}  // namespace trading_heal::actuator
