#include "trading_heal/common/bus.hpp"

#include <systemd/sd-bus.h>
#include <systemd/sd-id128.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

namespace trading_heal::common {

void BusCloser::operator()(sd_bus* bus) const { sd_bus_flush_close_unref(bus); }

tl::expected<BusPtr, std::string> open_bus(SystemdScope scope) {
  sd_bus* raw = nullptr;
  const int r = scope == SystemdScope::kUser ? sd_bus_open_user(&raw) : sd_bus_open_system(&raw);
  const std::string which = "the " + std::string(to_string(scope)) + " bus";
  if (r < 0) return tl::unexpected("cannot connect to " + which + ": " + std::strerror(-r));
  BusPtr bus(raw);
  // sd_bus_get_bus_id() waits until the connection is running: authenticated, Hello answered.
  sd_id128_t id{};
  if (const int h = sd_bus_get_bus_id(bus.get(), &id); h < 0) {
    return tl::unexpected("cannot connect to " + which +
                          ": handshake failed: " + std::strerror(-h));
  }
  return bus;
}

bool bus_connection_lost(sd_bus* bus, int r) {
  if (bus == nullptr || sd_bus_is_open(bus) <= 0) return true;
  switch (-r) {
    case ENOTCONN:
    case ECONNRESET:
    case ECONNABORTED:
    case EPIPE:
    case ESHUTDOWN:
    case ENOTSOCK:
    case EBADF:
      return true;
    default:
      return false;
  }
}

BusReconnect::BusReconnect(std::string component, SystemdScope scope)
    : component_(std::move(component)), scope_(scope) {}

void BusReconnect::lost(const std::string& why, MonoTime now) {
  if (down_) return;  // the same loss, seen again
  down_ = true;
  down_since_ = now;
  next_attempt_ = now;  // the first attempt at once
  retry_ = kFirstRetry;
  attempts_ = 0;
  losses_.fetch_add(1, std::memory_order_relaxed);
  spdlog::error(
      "systemd bus connection lost component={} scope={} error=\"{}\" losses={}: "
      "reconnecting",
      component_, to_string(scope_), why, losses());
}

void BusReconnect::attempt_failed(const std::string& why, MonoTime now) {
  down_ = true;
  ++attempts_;
  if (attempts_ == 1) {
    spdlog::warn(
        "systemd bus not reachable yet component={} error=\"{}\": retrying every {} s "
        "at most",
        component_, why, std::chrono::duration<double>(kMaxRetry).count());
  }
  next_attempt_ = now + retry_;
  retry_ = std::min(retry_ * 2, kMaxRetry);
}

void BusReconnect::reconnected(MonoTime now, const std::string& note) {
  if (!down_) return;
  down_ = false;
  spdlog::info("systemd bus reconnected component={} after_s={:.3f} attempts={}{}{}", component_,
               std::chrono::duration<double>(now - down_since_).count(), attempts_ + 1,
               note.empty() ? "" : " ", note);
  attempts_ = 0;
  retry_ = kFirstRetry;
}

}  // namespace trading_heal::common
