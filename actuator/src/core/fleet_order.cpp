// The centre's orders on a host (fleet_order.hpp).
#include "fleet_order.hpp"

#include <algorithm>

#include "trading_heal/proto/codec.hpp"

namespace trading_heal::actuator::fleet_order {
namespace {

template <class T>
const T* field(const proto::Event& e, const char* name) {
  auto it = e.fields.find(name);
  return it == e.fields.end() ? nullptr : std::get_if<T>(&it->second);
}

std::string text_field(const proto::Event& e, const char* name) {
  const auto* v = field<std::string>(e, name);
  return v == nullptr ? std::string() : proto::sanitize_utf8(v->substr(0, 200));
}

// Whether the order in `o` holds a host named `host` at `now`.
bool in_force(const FleetOrder& o, const std::string& host, MonoTime now) {
  return o.hold && o.until && now < *o.until && o.canary_host != host;
}

// Audits a change of this host's holding, and releases what it held when it ends.
void settle(Step& s, const char* lifted_as) {
  FleetOrder& o = s.m.fleet;
  const bool now_holding = in_force(o, s.m.policy.host, s.now.mono);
  if (now_holding == o.holding) return;
  o.holding = now_holding;
  proto::Event e;
  e.action = proto::name(proto::Action::kFleetHold);
  e.success = !now_holding;
  e.reason = o.reason;
  e.fields["state"] = now_holding ? "holding" : lifted_as;
  e.fields["incident"] = o.incident;
  e.fields["cause"] = o.cause;
  if (!o.canary_host.empty()) e.fields["canary_host"] = o.canary_host;
  e.detail = now_holding
                 ? "the centre holds this host's restarts" +
                       (o.canary_host.empty() ? std::string(": every host held")
                                              : ": " + o.canary_host + " is the canary host")
             : std::string(lifted_as) == "lapsed"
                 ? "the centre's order was not repeated: this host decides alone again"
                 : "the centre lifted its hold";
  s.out.emplace_back(std::move(e));
  if (now_holding) return;
  for (auto& a : s.m.agents) {
    if (a.held) fire(s, a, Event::kReleased);
  }
}

}  // namespace

bool holds(const Model& m, MonoTime now) { return in_force(m.fleet, m.policy.host, now); }

void on_directive(Step& s, const proto::Event& e) {
  FleetOrder& o = s.m.fleet;
  const auto* hold = field<bool>(e, "hold");
  const auto* ttl = field<std::int64_t>(e, "ttl_seconds");
  const std::chrono::seconds life =
      ttl == nullptr ? kDefaultTtl
                     : std::clamp(std::chrono::seconds(*ttl), std::chrono::seconds(1), kMaxTtl);
  o.hold = hold != nullptr && *hold;
  o.incident = text_field(e, "incident");
  o.cause = text_field(e, "cause");
  o.canary_host = text_field(e, "canary_host");
  o.reason = proto::sanitize_utf8(e.reason.substr(0, 300));
  o.until = s.now.mono + life;
  settle(s, "lifted");
}

void on_tick(Step& s) {
  if (s.m.fleet.holding && !holds(s.m, s.now.mono)) settle(s, "lapsed");
}

std::optional<MonoTime> deadline(const Model& m) {
  return m.fleet.holding ? m.fleet.until : std::nullopt;
}

}  // namespace trading_heal::actuator::fleet_order
