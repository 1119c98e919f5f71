#include "trading_heal/probe/daemon.hpp"

#include <spdlog/spdlog.h>

#include <csignal>

#include "trading_heal/common/log.hpp"

namespace trading_heal::probe {

Daemon::Daemon(const common::Config& cfg, const common::Identities& ids, zmq::context_t& ctx,
               const common::Clock& clock)
    : cfg_(cfg),
      ids_(ids),
      ctx_(ctx),
      clock_(clock),
      stamper_("probe", clock),
      guard_(ctx, "probe"),
      pub_(common::make_socket(ctx, zmq::socket_type::pub)),
      event_stamper_("probe", clock) {}

tl::expected<std::unique_ptr<Daemon>, Daemon::Failure> Daemon::start(const common::Config& cfg,
                                                                     const ProbeOptions& opts,
                                                                     const common::Identities& ids,
                                                                     zmq::context_t& ctx,
                                                                     const common::Clock& clock) {
  std::unique_ptr<Daemon> d(new Daemon(cfg, ids, ctx, clock));
  try {
    d->guard_.configure(cfg);
  } catch (const std::exception& e) {
    return tl::unexpected(Failure{common::kExitConfig, e.what()});
  }
  d->guard_.protect(d->pub_, "health", ids.allow({"actuator", "diagnoser", "exporter"}, true),
                    cfg.endpoints.health, common::Side::kBind);
  if (auto b = common::bind_endpoint(d->pub_, cfg.endpoints.health); !b) {
    return tl::unexpected(
        Failure{common::kExitFailure,
                "cannot bind health endpoint=" + cfg.endpoints.health + " error=" + b.error()});
  }
  d->rt_ = std::make_unique<Runtime>(cfg, opts);
  d->open_events();
  try {
    d->centre_ = std::make_unique<CentreLink>(ctx, d->guard_, cfg, ids, clock, d->events_.get());
  } catch (const std::exception& e) {
    return tl::unexpected(Failure{common::kExitFailure, e.what()});
  }
  return d;
}

void Daemon::open_events() {
  auto o = common::Outbox::open(cfg_.data_dir + "/probe-outbox");
  if (!o) {
    spdlog::warn("events disabled: cannot open outbox error={}", o.error());
    return;
  }
  outbox_ = std::move(*o);
  events_ = std::make_unique<common::ReliableSender>(
      ctx_, cfg_.endpoints.events, *outbox_, event_stamper_, std::chrono::seconds(2), 256,
      [this](zmq::socket_t& s) {
        guard_.protect(s, "events", ids_.allow({"exporter"}), cfg_.endpoints.events,
                       common::Side::kConnect);
      });
  guard_.watch_connection(events_->socket(), cfg_.endpoints.events);
}

void Daemon::publish(const proto::Body& body) {
  if (!common::send_message(pub_, stamper_.stamp(body))) rt_->count_publish_drop();
  centre_->publish(body);
}

void Daemon::watch_bus(int fd) {
  if (bus_fd_ >= 0) loop_->remove_fd(bus_fd_);
  bus_fd_ = fd;
  if (fd >= 0) loop_->on_fd(fd, [this] { loop_->wake_at(rt_->on_bus(clock_)); });
}

void Daemon::attach(common::Loop& loop) {
  loop_ = &loop;
  guard_.attach(loop);
  centre_->attach(loop);
  loop.on_signal(SIGHUP, [this] { guard_.reload_hosts(); });
  rt_->peers_refused = [this] { return guard_.refused(); };
  // The centre's orders go to the host's actuator on the health socket (it never touches the
  // network); not to the centre again.
  centre_->on_order = [this](const proto::Event& e) {
    if (!common::send_message(pub_, stamper_.stamp(e))) rt_->count_publish_drop();
  };
  rt_->on_report = [this](const proto::HealthReport& r) { publish(r); };
  rt_->on_heartbeat = [this](const proto::Heartbeat& h) { publish(h); };
  rt_->on_event = [this](const proto::Event& e) {
    if (!events_) return;
    if (auto s = events_->send(e, clock_.mono()); !s) {
      spdlog::warn("audit event not stored action={} error={}", e.action, s.error());
    }
  };
  if (events_) {
    loop.on_readable(events_->socket(), [this] { events_->on_readable(clock_.mono()); });
  }
  watch_bus(rt_->bus_fd());
  rt_->on_bus_fd = [this](int /*old_fd*/, int new_fd) { watch_bus(new_fd); };
  if (rt_->db_fd() >= 0) loop.on_fd(rt_->db_fd(), [this] { loop_->wake_at(rt_->on_db(clock_)); });
  if (rt_->learn_fd() >= 0) {
    loop.on_fd(rt_->learn_fd(), [this] { loop_->wake_at(rt_->on_learn(clock_)); });
  }
  loop.on_tick(clock_.mono(), [this](common::MonoTime) {
    auto next = rt_->on_tick(clock_);
    if (events_) next = std::min(next, events_->on_tick(clock_.mono()));
    next = std::min(next, centre_->on_tick(clock_.mono()));
    return next;
  });
}

}  // namespace trading_heal::probe
