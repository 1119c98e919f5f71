#include "trading_heal/diagnoser/daemon.hpp"

#include <poll.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "trading_heal/common/loop.hpp"
#include "trading_heal/common/notify.hpp"
#include "trading_heal/common/peer_guard.hpp"
#include "trading_heal/common/reliable.hpp"
#include "trading_heal/common/text.hpp"
#include "trading_heal/common/zmq.hpp"
#include "trading_heal/diagnoser/analyst.hpp"
#include "trading_heal/diagnoser/journal.hpp"
#include "trading_heal/diagnoser/model_link.hpp"
#include "trading_heal/diagnoser/ollama_client.hpp"
#include "trading_heal/diagnoser/rule_table.hpp"
#include "trading_heal/diagnoser/trigger.hpp"
#include "trading_heal/proto/actions.hpp"
#include "trading_heal/proto/json.hpp"

namespace trading_heal::diagnoser {
namespace {

using common::MonoTime;
constexpr std::size_t kJournalLines = 50;
constexpr const char* kResultsEndpoint = "inproc://diagnoser-results";

JournalFn journal_for(common::SystemdScope scope) {
  return [scope](const std::string& unit) { return read_unit_journal(unit, scope, kJournalLines); };
}

std::unique_ptr<OllamaClient> make_llm(const common::Config& cfg, const std::atomic<bool>& cancel) {
  if (!cfg.ollama.enabled) return nullptr;
  return std::make_unique<OllamaClient>(cfg.ollama, cancel);
}

// Many hosts: a host's diagnoser asks the centre's model through its probe (its own
// OLLAMA_ENABLED=false still means the rules only). The wait covers the centre's call and the way.
std::unique_ptr<RemoteModel> make_remote(const common::Config& cfg,
                                         const std::atomic<bool>& cancel) {
  if (cfg.endpoints.model_relay.empty() || !cfg.ollama.enabled) return nullptr;
  return std::make_unique<RemoteModel>(cfg.endpoints.model_relay,
                                       cfg.ollama.timeout + std::chrono::seconds(2), cancel,
                                       cfg.ollama.model);
}

void log_result(const common::AgentSpec& spec, const Result& r) {
  const auto& d = r.outcome.diagnosis;
  if (!r.journal_error.empty()) {
    spdlog::warn("journal read failed agent={} error=\"{}\"", spec.instance, r.journal_error);
  }
  if (r.outcome.llm_error) {
    // The phrase operators grep for (README "What the demo shows").
    spdlog::warn("WARNING: Ollama analysis error for {}: {} detail=\"{}\" model={} elapsed_ms={}",
                 spec.symbol, r.outcome.llm_error->reason, r.outcome.llm_error->detail, d.model,
                 static_cast<long>(d.latency_seconds * 1000));
  }
  spdlog::info(
      "diagnosis agent={} source={} category={} severity={} action={} latency_ms={} lines={} "
      "cause=\"{}\"",
      spec.instance, d.source, d.category, proto::to_string(d.severity), proto::to_string(d.action),
      static_cast<long>(d.latency_seconds * 1000), r.lines, d.cause);
}

proto::Event make_event(const common::AgentSpec& spec, const Result& r, bool error) {
  const auto& d = r.outcome.diagnosis;
  proto::Event ev;
  ev.action = proto::name(error ? proto::Action::kOllamaError : proto::Action::kDiagnosis);
  ev.agent = spec.instance;
  ev.symbol = spec.symbol;
  ev.profile = spec.profile;
  ev.success = !error;
  ev.diagnosis = d.cause;
  const std::string reason = r.outcome.llm_error ? r.outcome.llm_error->reason : "";
  ev.reason = error ? reason : d.category;
  ev.detail = common::inert(error ? r.outcome.llm_error->detail : d.explanation.substr(0, 500));
  ev.fields = {{"latency_seconds", d.latency_seconds},
               {"source", d.source},
               {"category", d.category},
               {"model", d.model},
               {"reason", reason},
               {"severity", std::string(proto::to_string(d.severity))},
               {"recommended_action", std::string(proto::to_string(d.action))},
               {"origin", r.job.origin},
               {"incident", d.incident}};
  return ev;
}

// The rule table: the shipped file (by default next to the binary) and the operator's rules.d;
// problems are logged, never fatal (the built-in table stands in for an unusable shipped file).
LoadedRules load_rule_table(const common::Config& cfg) {
  std::string file = cfg.rules_file;
  if (file.empty()) {
    std::error_code ec;
    const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    file = ec ? std::string(kDefaultRulesFile)
              : (exe.parent_path().parent_path() / "share/trading-heal/rules/trading-heal.rules")
                    .string();
  }
  LoadedRules r = load_rules(file, cfg.rules_dir);
  for (const auto& e : r.errors) spdlog::warn("rules file problem error=\"{}\"", e.to_string());
  spdlog::info("rules loaded rules={} from_extensions={} builtin={} files={} problems={}",
               r.table.size(), r.extension_rules, r.builtin, r.files.size(), r.errors.size());
  return r;
}

}  // namespace

// The shell's state and handlers, behind Daemon (daemon.hpp).
class Daemon::Impl {
 public:
  Impl(const common::Config& cfg, common::Identities ids, zmq::context_t& ctx,
       const common::Clock& clock)
      : cfg_(cfg),
        clock_(clock),
        ctx_(ctx),
        llm_(make_llm(cfg, cancel_)),
        remote_(make_remote(cfg, cancel_)),
        rules_(load_rule_table(cfg)),
        analyst_(journal_for(cfg.scope),
                 remote_ ? remote_.get() : static_cast<LlmClient*>(llm_.get()),
                 cfg.diagnosis_cache_ttl, cfg.ollama.max_answer_bytes, clock_, rules_.table),
        trigger_(cfg.diagnose_after),
        sched_({.workers = static_cast<std::size_t>(cfg.diagnose_workers),
                .queue_capacity = std::max<std::size_t>(16, cfg.agents.size() * 2)}),
        diag_stamp_("diagnoser", clock_),
        event_stamp_("diagnoser", clock_),
        pub_stamp_("diagnoser", clock_),
        ids_(std::move(ids)) {}

  // Every socket, the signals and the tick, on `loop`.
  void attach(common::Loop& loop) {
    guard_->attach(loop);
    loop.on_signal(SIGHUP, [this] { guard_->reload_hosts(); });
    loop.on_readable(health_, [this] { on_health(); });
    loop.on_readable(control_, [this] { on_control(); });
    loop.on_readable(results_, [this] { on_results(); });
    loop.on_readable(diag_tx_->socket(), [this] { diag_tx_->on_readable(clock_.mono()); });
    loop.on_readable(event_tx_->socket(), [this] { event_tx_->on_readable(clock_.mono()); });
    if (remote_) remote_->attach(loop);
    if (model_server_) model_server_->attach(loop);
    loop.on_tick(clock_.mono(), [this](MonoTime now) { return on_tick(now); });
  }

  void stop() {
    const auto t0 = clock_.mono();
    cancel_ = true;  // aborts requests in flight
    pool_->stop();
    if (model_server_) model_server_->stop();
    spdlog::info("stopped in_flight={} cancel_ms={}", sched_.in_flight(),
                 std::chrono::duration_cast<std::chrono::milliseconds>(clock_.mono() - t0).count());
  }

  std::string setup() {
    std::error_code ec;
    std::filesystem::create_directories(cfg_.data_dir, ec);
    if (ec) return "cannot create " + cfg_.data_dir + ": " + ec.message();
    auto db = common::Outbox::open(cfg_.data_dir + "/diagnoser-diagnosis.outbox");
    if (!db) return db.error();
    auto eb = common::Outbox::open(cfg_.data_dir + "/diagnoser-events.outbox");
    if (!eb) return eb.error();
    diag_box_ = std::move(*db);
    event_box_ = std::move(*eb);
    guard_ = std::make_unique<common::PeerGuard>(ctx_, "diagnoser");
    try {
      guard_->configure(cfg_);
      if (auto e = setup_sockets(); !e.empty()) return e;
      setup_senders();
    } catch (const std::exception& e) {
      return e.what();
    }
    if (auto e = setup_model(); !e.empty()) return e;
    pool_ = std::make_unique<WorkerPool>(ctx_, kResultsEndpoint, analyst_,
                                         static_cast<std::size_t>(cfg_.diagnose_workers));
    return {};
  }

  // Health from the probe's user only; diagnose-now from the operators and the actuator.
  std::string setup_sockets() {
    health_ = common::make_socket(ctx_, zmq::socket_type::sub);
    health_.set(zmq::sockopt::subscribe, "");
    pub_ = common::make_socket(ctx_, zmq::socket_type::pub);
    control_ = common::make_socket(ctx_, zmq::socket_type::router);
    guard_->protect(health_, "health", ids_.allow({"probe"}), cfg_.endpoints.health,
                    common::Side::kConnect);
    guard_->protect(pub_, "pub", ids_.allow({"exporter"}, true), cfg_.endpoints.diagnoser_pub);
    guard_->protect(control_, "control", ids_.allow({"actuator"}, true),
                    cfg_.endpoints.diagnoser_control);
    results_ = zmq::socket_t(ctx_, zmq::socket_type::pull);
    results_.set(zmq::sockopt::linger, 0);
    for (auto r : {common::connect_endpoint(health_, cfg_.endpoints.health),
                   common::bind_endpoint(pub_, cfg_.endpoints.diagnoser_pub),
                   common::bind_endpoint(control_, cfg_.endpoints.diagnoser_control),
                   common::bind_endpoint(results_, kResultsEndpoint)}) {
      if (!r) return r.error();
    }
    guard_->watch_connection(health_, cfg_.endpoints.health);
    return {};
  }

  // Diagnoses go to the actuator's user only, records to the exporter's.
  void setup_senders() {
    diag_tx_ = std::make_unique<common::ReliableSender>(
        ctx_, cfg_.endpoints.diagnosis, *diag_box_, diag_stamp_, std::chrono::seconds(2), 256,
        [this](zmq::socket_t& s) {
          guard_->protect(s, "diagnosis", ids_.allow({"actuator"}), cfg_.endpoints.diagnosis,
                          common::Side::kConnect);
        });
    event_tx_ = std::make_unique<common::ReliableSender>(
        ctx_, cfg_.endpoints.records(), *event_box_, event_stamp_, std::chrono::seconds(2), 256,
        [this](zmq::socket_t& s) {
          guard_->protect(s, "events", ids_.allow({cfg_.endpoints.records_peer()}),
                          cfg_.endpoints.records(), common::Side::kConnect);
        });
    guard_->watch_connection(diag_tx_->socket(), cfg_.endpoints.diagnosis);
    guard_->watch_connection(event_tx_->socket(), cfg_.endpoints.records());
  }

  // Many hosts: a host's diagnoser asks the centre's model through its probe; the centre's
  // answers the hosts with its own.
  std::string setup_model() {
    if (remote_) {
      const std::string& ep = cfg_.endpoints.model_relay;
      auto r = remote_->open(ctx_, [&](zmq::socket_t& s) {
        guard_->protect(s, "model", ids_.allow({"probe"}), ep, common::Side::kConnect);
      });
      if (!r) return r.error();
      guard_->watch_connection(remote_->socket(), ep);
    }
    if (cfg_.endpoints.model.empty()) return {};
    if (!llm_) {
      return "TRADING_HEAL_MODEL_ENDPOINT is set (this diagnoser answers the hosts' model "
             "requests) but OLLAMA_ENABLED is false: it has no model to ask";
    }
    const auto workers = static_cast<std::size_t>(cfg_.diagnose_workers);
    model_server_ = std::make_unique<ModelServer>(*llm_, workers, workers * 8, clock_);
    auto r = model_server_->open(ctx_, cfg_.endpoints.model, [&](zmq::socket_t& s) {
      guard_->protect(s, "model", ids_.allow({"exporter"}), cfg_.endpoints.model);
    });
    return r ? std::string() : r.error();
  }

  void on_health() {
    while (true) {
      zmq::message_t frame;
      try {
        if (!health_.recv(frame, zmq::recv_flags::dontwait)) break;
      } catch (const zmq::error_t&) {
        break;
      }
      auto msg = common::decode_frame(frame, rejects_);
      if (!msg) continue;
      const auto* rep = std::get_if<proto::HealthReport>(&msg->body);
      if (rep == nullptr) continue;
      const auto* spec = cfg_.find_agent(rep->agent);
      if (spec == nullptr) {
        ++unknown_agent_;
        continue;
      }
      ++reports_;
      latest_[rep->agent] = *rep;
      if (!trigger_.on_report(*rep)) continue;
      ++triggers_;
      Job job{make_context(*spec, rep), incident_id(*spec, msg->env.ts), "health", {}};
      submit(std::move(job));
    }
  }

  static std::string incident_id(const common::AgentSpec& spec, double ts) {
    return spec.instance + "@" + std::to_string(static_cast<long long>(ts));
  }

  Scheduler::Admit submit(Job job) {
    const std::string agent = job.context.agent;
    const auto admit = sched_.submit(std::move(job));
    if (admit == Scheduler::Admit::kQueueFull) {
      ++queue_full_;
      spdlog::warn("diagnosis queue full agent={} queued={} count={}", agent, sched_.queued(),
                   queue_full_);
    } else if (admit == Scheduler::Admit::kDuplicate) {
      ++duplicates_;
    }
    dispatch();
    return admit;
  }

  void dispatch() {
    while (auto job = sched_.next()) {
      spdlog::info("diagnosing agent={} origin={} incident={}", job->context.agent, job->origin,
                   job->incident);
      pool_->post(std::move(*job));
    }
  }

  void on_control() {
    common::serve_commands(
        control_, rejects_, proto::Limits{}, pub_stamp_,
        [this](const proto::Message& msg, const proto::Command& c, proto::Ack& ack) {
          ++commands_;
          ack.detail = command_detail(msg, c, ack.ok).dump();
        });
  }

  // diagnose AGENT (queued) or status; `ok` false for anything else.
  nlohmann::json command_detail(const proto::Message& msg, const proto::Command& cmd, bool& ok) {
    if (cmd.verb == proto::CommandVerb::kStatus) return proto::fields_to_json(stats());
    if (cmd.verb != proto::CommandVerb::kDiagnose) {
      ok = false;
      return {{"error", "the diagnoser only takes diagnose and status"}};
    }
    const auto* spec = cfg_.find_agent(cmd.agent);
    if (spec == nullptr) {
      ok = false;
      return {{"error", "unknown agent"}};
    }
    auto it = latest_.find(spec->instance);
    Job job{make_context(*spec, it == latest_.end() ? nullptr : &it->second),
            incident_id(*spec, msg.env.ts), "command", cmd.request_id};
    const auto admit = submit(std::move(job));
    ok = admit == Scheduler::Admit::kQueued;
    return {{"agent", spec->instance},
            {"queued", ok},
            {"state", admit == Scheduler::Admit::kQueued      ? "queued"
                      : admit == Scheduler::Admit::kDuplicate ? "already_in_progress"
                                                              : "queue_full"}};
  }

  void on_results() {
    while (true) {
      zmq::message_t m;
      try {
        if (!results_.recv(m, zmq::recv_flags::dontwait)) break;
      } catch (const zmq::error_t&) {
        break;
      }
    }
    drain_results(clock_.mono());
  }

  void drain_results(MonoTime now) {
    for (auto& r : pool_->take()) {
      sched_.done(r.job.context.agent);
      const auto* spec = cfg_.find_agent(r.job.context.agent);
      if (spec == nullptr) continue;  // cannot happen: jobs are made for configured agents
      ++diagnoses_;
      if (r.cache_hit) ++cache_hits_;
      if (!r.journal_error.empty()) ++journal_errors_;
      const auto& d = r.outcome.diagnosis;
      if (d.source == "llm") ++llm_ok_;
      log_result(*spec, r);
      if (r.outcome.llm_error) {
        ++llm_errors_;
        if (auto s = event_tx_->send(make_event(*spec, r, true), now); !s) outbox_failed(s.error());
      }
      if (auto s = diag_tx_->send(d, now); !s) outbox_failed(s.error());
      if (auto s = event_tx_->send(make_event(*spec, r, false), now); !s) {
        outbox_failed(s.error());
      }
      (void)common::send_message(pub_, pub_stamp_.stamp(d));
      last_latency_ = d.latency_seconds;
    }
    dispatch();
  }

  void outbox_failed(const std::string& e) {
    ++outbox_errors_;
    spdlog::error("outbox write failed error=\"{}\" count={}", e, outbox_errors_);
  }

  proto::Fields stats() const {
    auto i = [](std::uint64_t v) { return proto::Value(static_cast<std::int64_t>(v)); };
    return {{"reports", i(reports_)},
            {"triggers", i(triggers_)},
            {"commands", i(commands_)},
            {"diagnoses", i(diagnoses_)},
            {"llm_ok", i(llm_ok_)},
            {"llm_errors", i(llm_errors_)},
            {"cache_hits", i(cache_hits_)},
            {"journal_errors", i(journal_errors_)},
            {"queue_full", i(queue_full_)},
            {"duplicates", i(duplicates_)},
            {"unknown_agent", i(unknown_agent_)},
            {"outbox_errors", i(outbox_errors_)},
            {"peers_refused", i(guard_ ? guard_->refused() : 0)},
            {"queued", i(sched_.queued())},
            {"in_flight", i(sched_.in_flight())},
            {"diagnosis_pending", i(diag_tx_->pending())},
            {"events_pending", i(event_tx_->pending())},
            {"rejected", i(rejects_.total())},
            {"last_latency_seconds", proto::Value(last_latency_)},
            {"llm_enabled", proto::Value(cfg_.ollama.enabled)},
            {"model_asked", i(remote_ ? remote_->asked() : 0)},
            {"model_served", i(model_server_ ? model_server_->served() : 0)},
            {"model_failed", i(model_server_ ? model_server_->failed() : 0)},
            {"model_busy", i(model_server_ ? model_server_->busy() : 0)}};
  }

  MonoTime on_tick(MonoTime now) {
    drain_results(now);  // in case a wake-up frame was lost
    if (now >= next_heartbeat_) {
      proto::Heartbeat hb{"diagnoser", static_cast<std::uint32_t>(::getpid()),
                          std::chrono::duration<double>(cfg_.interval).count(), stats()};
      (void)common::send_message(pub_, pub_stamp_.stamp(hb));
      next_heartbeat_ = now + cfg_.interval;
    }
    MonoTime next = next_heartbeat_;
    next = std::min(next, diag_tx_->on_tick(now));
    next = std::min(next, event_tx_->on_tick(now));
    return next;
  }

  const common::Config& cfg_;
  const common::Clock& clock_;
  zmq::context_t& ctx_;  // the caller's: it outlives every socket below
  std::atomic<bool> cancel_{false};
  std::unique_ptr<OllamaClient> llm_;
  std::unique_ptr<RemoteModel> remote_;  // a host's: the centre's model, through the probe
  LoadedRules rules_;                    // before analyst_, which keeps a reference to its table
  Analyst analyst_;
  Trigger trigger_;
  Scheduler sched_;
  common::Stamper diag_stamp_;  // one stamper per reliable channel: each is a strict sequence
  common::Stamper event_stamp_;
  common::Stamper pub_stamp_;
  common::Identities ids_;
  std::unique_ptr<common::PeerGuard> guard_;  // made with the sockets, in setup()
  zmq::socket_t health_;
  zmq::socket_t pub_;
  zmq::socket_t control_;
  zmq::socket_t results_;
  std::unique_ptr<common::Outbox> diag_box_;
  std::unique_ptr<common::Outbox> event_box_;
  std::unique_ptr<common::ReliableSender> diag_tx_;
  std::unique_ptr<common::ReliableSender> event_tx_;
  std::unique_ptr<ModelServer> model_server_;  // the centre's: the hosts' model requests
  std::unique_ptr<WorkerPool> pool_;  // last: its threads stop before the sockets and context
  std::map<std::string, proto::HealthReport> latest_;
  proto::RejectCounter rejects_;
  MonoTime next_heartbeat_{};
  double last_latency_ = 0;
  std::uint64_t reports_ = 0, triggers_ = 0, commands_ = 0, diagnoses_ = 0, llm_ok_ = 0,
                llm_errors_ = 0, cache_hits_ = 0, journal_errors_ = 0, queue_full_ = 0,
                duplicates_ = 0, unknown_agent_ = 0, outbox_errors_ = 0;
};

Daemon::Daemon(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Daemon::~Daemon() = default;

tl::expected<std::unique_ptr<Daemon>, std::string> Daemon::start(const common::Config& cfg,
                                                                 common::Identities ids,
                                                                 zmq::context_t& ctx,
                                                                 const common::Clock& clock) {
  auto impl = std::make_unique<Impl>(cfg, std::move(ids), ctx, clock);
  if (auto e = impl->setup(); !e.empty()) return tl::unexpected(e);
  return std::unique_ptr<Daemon>(new Daemon(std::move(impl)));
}

void Daemon::attach(common::Loop& loop) { impl_->attach(loop); }
void Daemon::stop() { impl_->stop(); }

int run_once(const common::Config& cfg, const std::string& agent, common::SignalFd& signals) {
  const auto* spec = cfg.find_agent(agent);
  if (spec == nullptr) {
    std::fprintf(stderr,
                 "trading-heal-diagnoser: %s is not a configured agent (TRADING_HEAL_AGENTS)\n",
                 agent.c_str());
    return common::kExitUsage;
  }
  std::atomic<bool> cancel{false};
  if (!cfg.endpoints.model_relay.empty()) {
    spdlog::warn(
        "--once asks OLLAMA_HOST itself, not the centre (TRADING_HEAL_MODEL_RELAY_ENDPOINT)");
  }
  auto llm = make_llm(cfg, cancel);
  const LoadedRules rules = load_rule_table(cfg);
  common::SystemClock clock;
  Analyst analyst(journal_for(cfg.scope), llm.get(), std::chrono::milliseconds(0),
                  cfg.ollama.max_answer_bytes, clock, rules.table);
  Job job{make_context(*spec, nullptr),
          spec->instance + "@" +
              std::to_string(static_cast<long long>(common::to_epoch_seconds(clock.wall()))),
          "once",
          {}};
  auto fut = std::async(std::launch::async, [&] { return analyst.run(job); });
  // The diagnosis runs on its own thread so that SIGTERM/SIGINT can cancel the LLM request.
  while (fut.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready) {
    pollfd pfd{signals.fd(), POLLIN, 0};
    if (::poll(&pfd, 1, 100) > 0) {
      if (auto s = signals.read(); s && (*s == SIGTERM || *s == SIGINT)) cancel = true;
    }
  }
  Result r = fut.get();
  if (cancel) return common::kExitOk;
  log_result(*spec, r);
  // The Diagnosis body itself: proto::to_json would let the envelope's `source` (diagnoser)
  // hide the diagnosis's own `source` (rules | llm | cache).
  nlohmann::json j = proto::body_to_json(r.outcome.diagnosis);
  j["kind"] = "diagnosis";
  j["ts"] = common::to_epoch_seconds(clock.wall());
  if (r.outcome.llm_error) j["llm_error_detail"] = r.outcome.llm_error->detail;
  std::printf("%s\n", proto::to_json_line(j).c_str());
  std::fflush(stdout);
  return common::kExitOk;
}

}  // namespace trading_heal::diagnoser
