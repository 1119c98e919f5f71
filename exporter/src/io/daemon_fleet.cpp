// The exporter daemon as a centre of many hosts: its fleet-wide decisions (FleetGuard), audited
// under its own name, and its orders to the hosts (docs/operations.md "Many hosts").
#include <map>

#include <spdlog/spdlog.h>

#include "trading_heal/common/zmq.hpp"
#include "trading_heal/exporter/daemon.hpp"
#include "trading_heal/proto/actions.hpp"

namespace trading_heal::exporter {

using namespace std::chrono_literals;

void Daemon::decide_fleet(common::MonoTime now) {
  std::vector<proto::Event> changes;
  FleetDirective order;
  {
    std::lock_guard lock(status_mu_);
    std::map<std::string, bool> up;
    for (const auto& [host, heard] : status_.hosts(now)) up[host] = heard;
    changes = fleet_.decide(now, common::to_epoch_seconds(clock_.wall()), up);
    order = fleet_.directive();
  }
  for (const auto& e : changes) {
    spdlog::warn("fleet incident {}: {}", std::get<std::string>(e.fields.at("stage")), e.reason);
  }
  audit_own(std::move(changes));
  // Told at once when it changes, and again every 2 s: a host that hears nothing for 10 s lets
  // its order lapse.
  if (order == told_ && now < next_order_) return;
  proto::Event e;
  e.action = proto::name(proto::Action::kFleetDirective);
  e.success = true;
  e.reason = order.reason;
  e.fields["hold"] = order.hold;
  e.fields["incident"] = order.incident;
  e.fields["cause"] = order.cause;
  e.fields["canary_host"] = order.canary_host;
  e.fields["ttl_seconds"] = static_cast<std::int64_t>(10);
  (void)common::send_message(*fleet_pub_, order_stamper_.stamp(std::move(e)));
  told_ = order;
  next_order_ = now + 2s;
}

void Daemon::audit_own(std::vector<proto::Event> events) {
  if (events.empty()) return;
  std::vector<std::string> lines;
  std::vector<proto::Message> msgs;
  for (auto& e : events) {
    msgs.push_back(own_stamper_.stamp(std::move(e)));
    lines.push_back(audit_->stage(msgs.back(), cfg_.host));
  }
  if (auto r = audit_->commit(); !r) {
    ++write_errors_;
    metrics_.add_audit_write_error();
    spdlog::error("audit write failed error=\"{}\" own_records_lost={}", r.error(), msgs.size());
    return;
  }
  for (std::size_t i = 0; i < msgs.size(); ++i) {
    tracker_.record(own_stamper_.source(), own_stamper_.boot_id(), msgs[i].env.seq);
    metrics_.on_event(std::get<proto::Event>(msgs[i].body), cfg_.host);
    hub_.publish(std::move(lines[i]));
  }
  metrics_.add_audit_written(msgs.size());
  seq_dirty_ = true;
}

}  // namespace trading_heal::exporter
