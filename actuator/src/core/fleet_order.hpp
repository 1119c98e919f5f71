// Many hosts: the centre's orders (docs/operations.md "Many hosts"). The centre sees every
// host's agents; when several hosts fail together it lets one host (the canary host) restart and
// holds the others, and it holds every host while the fleet-wide breaker is open. Its order comes
// again every 2 s (the probe passes it on); an order unheard for kTtl lapses and the host decides
// alone, under its own limits (the per-host global incident, breaker and budget always apply).
#pragma once

#include <chrono>

#include "step.hpp"

namespace trading_heal::actuator::fleet_order {

// How long an order holds without being repeated, whatever the order says (bounded).
inline constexpr std::chrono::seconds kDefaultTtl{10};
inline constexpr std::chrono::seconds kMaxTtl{60};

// Whether the centre's order holds this host's restarts now. Pure.
bool holds(const Model& m, MonoTime now);
// A `fleet_directive` event from the probe: taken, audited as `fleet_hold` when this host's
// holding changes; agents it held are released when it lifts.
void on_directive(Step& s, const proto::Event& e);
// An order not repeated in time lapses (audited; its held agents released).
void on_tick(Step& s);
// When an order in force lapses unless repeated.
std::optional<MonoTime> deadline(const Model& m);

}  // namespace trading_heal::actuator::fleet_order
