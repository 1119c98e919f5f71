// Connections to systemd's bus (system or user) that survive long idle periods and heal after a
// loss: the handshake is completed when a connection opens, a transport error marks it lost, and
// the owner opens a new one (BusReconnect says when, logs once per loss, counts the losses).
//
// Why the handshake at open: sd_bus_open_*() only starts authentication; the reply is read at
// the connection's first processing, and sd-bus gives a connection 90 s to authenticate. A
// connection opened and left alone for longer fails its first call with ENOTCONN (seen with the
// actuator, whose first restart comes minutes after its start).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <tl/expected.hpp>

#include "trading_heal/common/clock.hpp"
#include "trading_heal/common/config.hpp"

struct sd_bus;

namespace trading_heal::common {

struct BusCloser {
  void operator()(sd_bus* bus) const;  // sd_bus_flush_close_unref
};
using BusPtr = std::unique_ptr<sd_bus, BusCloser>;

// Opens the bus of `scope` and completes authentication and Hello before returning, so the
// connection stays usable however long it then sits idle. The error names the bus and why.
tl::expected<BusPtr, std::string> open_bus(SystemdScope scope);

// True when `r` (a negative errno from an sd-bus call on `bus`) means the connection itself is
// gone — closed, reset, never authenticated — rather than an error the peer answered with
// (access denied, no such unit) or a slow peer (timeout). `bus` may be null.
bool bus_connection_lost(sd_bus* bus, int r);

// The bookkeeping of one long-lived connection: losses counted and logged once each, the
// recovery logged with how long it took, and reconnection attempts spaced out (0.5 s doubling
// to 10 s) while the bus cannot be reached. Thread-safe for losses(); the rest belongs to the
// thread that owns the connection.
class BusReconnect {
 public:
  BusReconnect(std::string component, SystemdScope scope);

  // The connection was found lost: logs it (once per loss) and counts it.
  void lost(const std::string& why, MonoTime now);
  // An attempt to open a new connection failed: the next one waits longer. Logged once per loss.
  void attempt_failed(const std::string& why, MonoTime now);
  // A new connection replaced a lost one: logs the recovery (with `note`, e.g. what was redone).
  void reconnected(MonoTime now, const std::string& note);

  bool down() const { return down_; }
  // When the next attempt to reconnect is due (only meaningful while down()).
  MonoTime next_attempt() const { return next_attempt_; }
  bool attempt_due(MonoTime now) const { return down_ && now >= next_attempt_; }
  // Connections found lost since the start (trading_selfheal_bus_reconnects_total).
  std::uint64_t losses() const { return losses_.load(std::memory_order_relaxed); }

  static constexpr std::chrono::milliseconds kFirstRetry{500};
  static constexpr std::chrono::milliseconds kMaxRetry{10000};

 private:
  std::string component_;
  SystemdScope scope_;
  bool down_ = false;
  MonoTime down_since_{};
  MonoTime next_attempt_{};
  std::chrono::milliseconds retry_{kFirstRetry};
  unsigned attempts_ = 0;
  std::atomic<std::uint64_t> losses_{0};
};

}  // namespace trading_heal::common
