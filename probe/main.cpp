// trading-heal-probe: every interval, the three checks for every agent; one HealthReport per
// agent on the `health` PUB, instant reports on unit changes, config_mismatch audit events.
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>

#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "trading_heal/common/log.hpp"
#include "trading_heal/common/loop.hpp"
#include "trading_heal/common/notify.hpp"
#include "trading_heal/common/peer_guard.hpp"
#include "trading_heal/common/reliable.hpp"
#include "trading_heal/common/settings.hpp"
#include "trading_heal/common/signals.hpp"
#include "trading_heal/probe/centre_link.hpp"
#include "trading_heal/probe/runtime.hpp"
#include "trading_heal/proto/json.hpp"

namespace {

namespace common = trading_heal::common;
namespace probe = trading_heal::probe;

constexpr const char* kUsage = R"(usage: trading-heal-probe [--once] [--help]
Checks every configured crypto-agent@ unit each interval (systemd over D-Bus, its process in
/proc, the age of its newest row in btc.decisions, with the heartbeat file as fallback) and
publishes one HealthReport per agent on the health endpoint.

  --once   one cycle; reports as JSON lines on stdout; exit 0 if all HEALTHY, 1 otherwise
  --help   this text

Exit status: 0 stopped by SIGTERM, 78 configuration error, 1 other failure.
)";

int run_once(const common::Config& cfg, const probe::ProbeOptions& opts) {
  probe::Runtime rt(cfg, opts);
  common::SystemClock clock;
  common::Stamper stamper("probe", clock);
  const auto reports = rt.run_once(clock);
  bool all_healthy = !reports.empty();
  for (const auto& r : reports) {
    std::cout << trading_heal::proto::to_json_line(trading_heal::proto::to_json(stamper.stamp(r)))
              << '\n';
    all_healthy = all_healthy && r.verdict == trading_heal::proto::Verdict::kHealthy;
  }
  std::cout.flush();
  return all_healthy ? 0 : 1;
}

int run_daemon(const common::Config& cfg, const probe::ProbeOptions& opts) {
  auto ids = common::resolve_identities(cfg);
  if (!ids) {
    spdlog::critical("configuration error: {}", ids.error().to_string());
    return common::kExitConfig;
  }
  common::SignalFd signals({SIGTERM, SIGINT, SIGHUP});
  zmq::context_t ctx(1);
  common::SystemClock clock;
  common::Stamper stamper("probe", clock);
  // Who may read the health reports (the consumers, the operators' tap); where the records go.
  common::PeerGuard guard(ctx, "probe");
  try {
    guard.configure(cfg);
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return common::kExitConfig;
  }
  auto pub = common::make_socket(ctx, zmq::socket_type::pub);
  guard.protect(pub, "health", ids->allow({"actuator", "diagnoser", "exporter"}, true),
                cfg.endpoints.health, common::Side::kBind);
  if (auto b = common::bind_endpoint(pub, cfg.endpoints.health); !b) {
    spdlog::error("cannot bind health endpoint={} error={}", cfg.endpoints.health, b.error());
    return common::kExitFailure;
  }
  probe::Runtime rt(cfg, opts);
  std::unique_ptr<common::Outbox> outbox;
  std::unique_ptr<common::ReliableSender> events;
  common::Stamper event_stamper("probe", clock);
  if (auto o = common::Outbox::open(cfg.data_dir + "/probe-outbox")) {
    outbox = std::move(*o);
    events = std::make_unique<common::ReliableSender>(
        ctx, cfg.endpoints.events, *outbox, event_stamper, std::chrono::seconds(2), 256,
        [&](zmq::socket_t& s) {
          guard.protect(s, "events", ids->allow({"exporter"}), cfg.endpoints.events,
                        common::Side::kConnect);
        });
    guard.watch_connection(events->socket(), cfg.endpoints.events);
  } else {
    spdlog::warn("events disabled: cannot open outbox error={}", o.error());
  }
  // Many hosts: the probe is the host's one link to the centre (nothing with one host).
  std::unique_ptr<probe::CentreLink> centre;
  try {
    centre = std::make_unique<probe::CentreLink>(ctx, guard, cfg, *ids, clock, events.get());
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return common::kExitFailure;
  }
  common::Loop loop(signals);
  guard.attach(loop);
  centre->attach(loop);
  loop.on_signal(SIGHUP, [&] { guard.reload_hosts(); });
  rt.peers_refused = [&] { return guard.refused(); };
  auto publish = [&](const trading_heal::proto::Body& body) {
    if (!common::send_message(pub, stamper.stamp(body))) rt.count_publish_drop();
    centre->publish(body);
  };
  // The centre's orders go to the host's actuator on the health socket (it never touches the
  // network); not to the centre again.
  centre->on_order = [&](const trading_heal::proto::Event& e) {
    if (!common::send_message(pub, stamper.stamp(e))) rt.count_publish_drop();
  };
  rt.on_report = [&](const trading_heal::proto::HealthReport& r) { publish(r); };
  rt.on_heartbeat = [&](const trading_heal::proto::Heartbeat& h) { publish(h); };
  rt.on_event = [&](const trading_heal::proto::Event& e) {
    if (!events) return;
    if (auto s = events->send(e, clock.mono()); !s) {
      spdlog::warn("audit event not stored action={} error={}", e.action, s.error());
    }
  };
  if (events) {
    loop.on_readable(events->socket(), [&] { events->on_readable(clock.mono()); });
  }
  auto watch_bus = [&](int old_fd, int new_fd) {
    if (old_fd >= 0) loop.remove_fd(old_fd);
    if (new_fd >= 0) loop.on_fd(new_fd, [&] { loop.wake_at(rt.on_bus(clock)); });
  };
  watch_bus(-1, rt.bus_fd());
  rt.on_bus_fd = watch_bus;
  if (rt.db_fd() >= 0) loop.on_fd(rt.db_fd(), [&] { loop.wake_at(rt.on_db(clock)); });
  if (rt.learn_fd() >= 0) loop.on_fd(rt.learn_fd(), [&] { loop.wake_at(rt.on_learn(clock)); });
  loop.on_tick(clock.mono(), [&](common::MonoTime) {
    auto next = rt.on_tick(clock);
    if (events) next = std::min(next, events->on_tick(clock.mono()));
    next = std::min(next, centre->on_tick(clock.mono()));
    return next;
  });
  common::notify_ready("probing " + std::to_string(cfg.agents.size()) + " agents");
  spdlog::info("probe started agents={} interval_s={} scope={} health={}", cfg.agents.size(),
               std::chrono::duration<double>(cfg.interval).count(), common::to_string(cfg.scope),
               cfg.endpoints.health);
  const int sig = loop.run();
  common::notify_stopping();
  spdlog::info("probe stopping signal={} cycles={}", sig, rt.cycles());
  return common::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  // One malloc arena: the PostgreSQL worker thread would otherwise get its own, and keep its
  // high-water mark resident (RSS goal: 15 MiB at 1000 agents).
  ::mallopt(M_ARENA_MAX, 1);
  bool once = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs((kUsage + common::settings_help(common::kProbe)).c_str(), stdout);
      return common::kExitOk;
    }
    if (a == "--once") {
      once = true;
    } else {
      std::fprintf(stderr, "trading-heal-probe: unknown argument %s\n%s", a.c_str(), kUsage);
      return common::kExitUsage;
    }
  }
  auto cfg = common::load_config(common::process_env());
  if (!cfg) {
    std::fprintf(stderr, "trading-heal-probe: configuration error: %s\n",
                 cfg.error().to_string().c_str());
    return common::kExitConfig;
  }
  const probe::ProbeOptions opts = probe::probe_options(*cfg);
  common::init_logging("probe", cfg->log_level);
  if (auto f = common::foreign_secrets(common::process_env(), "probe"); !f.empty()) {
    spdlog::warn(
        "the environment has settings that are not the probe's: {}; move them to the "
        "daemon's own env file (deploy.sh does)",
        fmt::join(f, ","));
  }
  try {
    return once ? run_once(*cfg, opts) : run_daemon(*cfg, opts);
  } catch (const std::exception& e) {
    spdlog::critical("probe failed error={}", e.what());
    return common::kExitFailure;
  }
}
