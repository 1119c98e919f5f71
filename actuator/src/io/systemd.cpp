#include "trading_heal/actuator/systemd.hpp"

#include <systemd/sd-bus.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <sstream>
#include <tuple>

#include <spdlog/spdlog.h>

#include "trading_heal/actuator/spawn.hpp"
#include "trading_heal/common/bus.hpp"

namespace trading_heal::actuator {
namespace {

constexpr const char* kDest = "org.freedesktop.systemd1";
constexpr const char* kPath = "/org/freedesktop/systemd1";
constexpr const char* kManager = "org.freedesktop.systemd1.Manager";

// A failed sd-bus call: the negative errno (to tell a lost connection from a refusal) and the
// text for the log and the audit.
struct BusError {
  int code = 0;
  std::string text;
};
template <class T>
using BusResult = tl::expected<T, BusError>;

BusError bus_error(const std::string& what, sd_bus_error& e, int r) {
  BusError out{r, what + ": " + (e.message != nullptr ? e.message : std::strerror(-r))};
  sd_bus_error_free(&e);
  return out;
}

// The D-Bus backend. Its connection is opened (handshake completed) and subscribed to systemd's
// job signals at construction, kept processed by idle() while the worker waits for work, and
// replaced when it is lost: a call that fails because the connection is gone is retried once
// at once on a new connection.
class DbusManager final : public UnitManager {
 public:
  explicit DbusManager(common::SystemdScope scope) : scope_(scope), reconnect_("actuator", scope) {
    if (auto c = connect(); !c) {
      spdlog::warn(
          "systemd bus not reachable at start scope={} error=\"{}\": each restart tries "
          "again",
          common::to_string(scope), c.error());
    }
  }
  ~DbusManager() override { close(); }
  DbusManager(const DbusManager&) = delete;
  DbusManager& operator=(const DbusManager&) = delete;

  std::string name() const override { return "dbus"; }

  tl::expected<UnitStatus, std::string> status(const std::string& unit) override {
    char* raw = nullptr;
    if (int r = sd_bus_path_encode("/org/freedesktop/systemd1/unit", unit.c_str(), &raw); r < 0) {
      return tl::unexpected(std::string("path encode: ") + std::strerror(-r));
    }
    const std::string path(raw);
    std::free(raw);  // NOLINT(cppcoreguidelines-no-malloc): sd-bus allocates with malloc
    return with_bus<UnitStatus>([&](sd_bus* bus) -> BusResult<UnitStatus> {
      UnitStatus s;
      for (auto [iface, prop, out] :
           {std::tuple<const char*, const char*, std::string*>{"org.freedesktop.systemd1.Unit",
                                                               "ActiveState", &s.active_state},
            {"org.freedesktop.systemd1.Unit", "SubState", &s.sub_state},
            {"org.freedesktop.systemd1.Service", "Result", &s.result}}) {
        sd_bus_error err{};  // SD_BUS_ERROR_NULL (a C compound literal)
        char* v = nullptr;
        const int r = sd_bus_get_property_string(bus, kDest, path.c_str(), iface, prop, &err, &v);
        if (r < 0) return tl::unexpected(bus_error("get " + std::string(prop), err, r));
        *out = v;
        std::free(v);  // NOLINT(cppcoreguidelines-no-malloc)
      }
      sd_bus_error err{};  // SD_BUS_ERROR_NULL (a C compound literal)
      std::uint32_t pid = 0;
      const int r = sd_bus_get_property_trivial(
          bus, kDest, path.c_str(), "org.freedesktop.systemd1.Service", "MainPID", &err, 'u', &pid);
      if (r < 0) return tl::unexpected(bus_error("get MainPID", err, r));
      s.main_pid = pid;
      return s;
    });
  }

  tl::expected<void, std::string> restart(const std::string& unit,
                                          std::chrono::milliseconds timeout) override {
    // The call is retried on a new connection only when it failed before systemd answered with
    // a job: once a job is queued, a lost connection only hides its result, and the caller's
    // verification (a new MainPID) tells whether it worked.
    auto job = with_bus<std::string>([&](sd_bus* bus) -> BusResult<std::string> {
      sd_bus_error err{};  // SD_BUS_ERROR_NULL (a C compound literal)
      sd_bus_message* reply = nullptr;
      const int r = sd_bus_call_method(bus, kDest, kPath, kManager, "RestartUnit", &err, &reply,
                                       "ss", unit.c_str(), "replace");
      if (r < 0) return tl::unexpected(bus_error("RestartUnit", err, r));
      const char* path = nullptr;
      const int rr = sd_bus_message_read(reply, "o", &path);
      std::string job_path = rr >= 0 && path != nullptr ? path : "";
      sd_bus_message_unref(reply);
      if (job_path.empty()) return tl::unexpected(BusError{-EBADMSG, "RestartUnit: no job path"});
      return job_path;
    });
    if (!job) return tl::unexpected(job.error());
    return wait_job(*job, timeout);
  }

  tl::expected<void, std::string> reset_failed(const std::string& unit) override {
    auto r = with_bus<bool>([&](sd_bus* bus) -> BusResult<bool> {
      sd_bus_error err{};  // SD_BUS_ERROR_NULL (a C compound literal)
      const int rc = sd_bus_call_method(bus, kDest, kPath, kManager, "ResetFailedUnit", &err,
                                        nullptr, "s", unit.c_str());
      if (rc < 0) return tl::unexpected(bus_error("ResetFailedUnit", err, rc));
      return true;
    });
    if (!r) return tl::unexpected(r.error());
    return {};
  }

  int idle_fd() const override { return bus_ ? sd_bus_get_fd(bus_.get()) : -1; }

  std::optional<std::chrono::milliseconds> idle() override {
    const auto now = std::chrono::steady_clock::now();
    if (bus_) {
      int r = 0;
      while ((r = sd_bus_process(bus_.get(), nullptr)) > 0) {
      }
      if (r < 0 || sd_bus_is_open(bus_.get()) <= 0) {
        lose("bus processing failed: " + std::string(std::strerror(r < 0 ? -r : ENOTCONN)));
      }
    }
    if (!bus_ && reconnect_.attempt_due(now)) (void)connect();
    if (bus_) return std::nullopt;  // woken by the bus fd
    return std::chrono::ceil<std::chrono::milliseconds>(
        std::max(reconnect_.next_attempt() - std::chrono::steady_clock::now(),
                 std::chrono::steady_clock::duration::zero()));
  }

  std::uint64_t connection_losses() const override { return reconnect_.losses(); }

 private:
  // Runs `op` on the connection (opening one first if there is none); when it fails because the
  // connection is gone, once more at once on a new connection.
  template <class T, class Op>
  tl::expected<T, std::string> with_bus(Op&& op) {
    std::string first;
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!bus_) {
        if (auto c = connect(); !c) {
          return tl::unexpected(first.empty() ? c.error() : first + "; then " + c.error());
        }
      }
      BusResult<T> r = op(bus_.get());
      if (r) return std::move(*r);
      if (!common::bus_connection_lost(bus_.get(), r.error().code)) {
        return tl::unexpected(std::move(r.error().text));
      }
      lose(r.error().text);
      first = r.error().text + " (connection lost)";
    }
    return tl::unexpected(first + "; the same on a new connection");
  }

  tl::expected<void, std::string> wait_job(const std::string& job_path,
                                           std::chrono::milliseconds timeout) {
    // JobRemoved may already sit in the read queue: process until ours is seen.
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      if (auto it = done_.find(job_path); it != done_.end()) {
        const std::string result = it->second;
        done_.erase(it);
        if (result == "done") return {};
        return tl::unexpected("restart job " + result);
      }
      if (!bus_) {
        spdlog::warn("restart job result lost with the bus connection job={}: verifying by MainPID",
                     job_path);
        return {};
      }
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return tl::unexpected(std::string("restart job did not finish in time"));
      int r = sd_bus_process(bus_.get(), nullptr);
      if (r < 0) {
        lose("waiting for the restart job: " + std::string(std::strerror(-r)));
        continue;
      }
      if (r > 0) continue;
      const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - now);
      r = sd_bus_wait(bus_.get(), static_cast<std::uint64_t>(left.count()));
      if (r < 0 && r != -EINTR)
        lose("waiting for the restart job: " + std::string(std::strerror(-r)));
    }
  }

  // A new connection, subscribed to JobRemoved before any job is queued on it.
  tl::expected<void, std::string> connect() {
    const auto now = std::chrono::steady_clock::now();
    auto bus = common::open_bus(scope_);
    if (!bus) {
      reconnect_.attempt_failed(bus.error(), now);
      return tl::unexpected(bus.error());
    }
    sd_bus_slot* slot = nullptr;
    int r = sd_bus_match_signal(bus->get(), &slot, kDest, kPath, kManager, "JobRemoved",
                                &DbusManager::on_job_removed, this);
    if (r < 0) {
      const std::string e = std::string("match JobRemoved: ") + std::strerror(-r);
      reconnect_.attempt_failed(e, now);
      return tl::unexpected(e);
    }
    sd_bus_error err{};  // SD_BUS_ERROR_NULL (a C compound literal)
    r = sd_bus_call_method(bus->get(), kDest, kPath, kManager, "Subscribe", &err, nullptr, "");
    if (r < 0) {
      const std::string e = bus_error("Subscribe", err, r).text;
      sd_bus_slot_unref(slot);
      reconnect_.attempt_failed(e, now);
      return tl::unexpected(e);
    }
    bus_ = std::move(*bus);
    slot_ = slot;
    reconnect_.reconnected(std::chrono::steady_clock::now(), "resubscribed=JobRemoved");
    return {};
  }

  void lose(const std::string& why) {
    reconnect_.lost(why, std::chrono::steady_clock::now());
    close();
  }

  void close() {
    sd_bus_slot_unref(slot_);
    slot_ = nullptr;
    bus_.reset();
    done_.clear();
  }

  static int on_job_removed(sd_bus_message* m, void* userdata, sd_bus_error* /*error*/) {
    auto* self = static_cast<DbusManager*>(userdata);
    std::uint32_t id = 0;
    const char* path = nullptr;
    const char* unit = nullptr;
    const char* result = nullptr;
    if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) >= 0 && path && result) {
      if (self->done_.size() > 256) self->done_.clear();  // others' jobs: bounded
      self->done_[path] = result;
    }
    return 0;
  }

  common::SystemdScope scope_;
  common::BusReconnect reconnect_;
  common::BusPtr bus_;
  sd_bus_slot* slot_ = nullptr;
  std::map<std::string, std::string> done_;  // job path -> result
};

class SystemctlManager final : public UnitManager {
 public:
  explicit SystemctlManager(common::SystemdScope scope) : scope_(scope) {}
  std::string name() const override { return "systemctl"; }

  tl::expected<UnitStatus, std::string> status(const std::string& unit) override {
    auto r =
        run_program({"systemctl", scope_ == common::SystemdScope::kUser ? "--user" : "--system",
                     "show", "-p", "ActiveState,SubState,Result,MainPID", "--", unit},
                    std::chrono::seconds(10));
    if (!r.ok()) return tl::unexpected("systemctl show: " + r.describe());
    return parse_show(r.out);
  }
  tl::expected<void, std::string> restart(const std::string& unit,
                                          std::chrono::milliseconds timeout) override {
    return run("restart", unit, timeout);
  }
  tl::expected<void, std::string> reset_failed(const std::string& unit) override {
    return run("reset-failed", unit, std::chrono::seconds(10));
  }

 private:
  tl::expected<void, std::string> run(const std::string& verb, const std::string& unit,
                                      std::chrono::milliseconds timeout) {
    auto r = run_program(systemctl_argv(scope_, verb, unit), timeout);
    if (!r.ok()) return tl::unexpected("systemctl " + verb + ": " + r.describe());
    return {};
  }
  common::SystemdScope scope_;
};

}  // namespace

std::vector<std::string> systemctl_argv(common::SystemdScope scope, const std::string& verb,
                                        const std::string& unit) {
  std::vector<std::string> argv{"systemctl"};
  if (scope == common::SystemdScope::kUser) argv.emplace_back("--user");
  argv.push_back(verb);
  argv.push_back(unit);
  return argv;
}

UnitStatus parse_show(const std::string& text) {
  UnitStatus s;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string k = line.substr(0, eq);
    const std::string v = line.substr(eq + 1);
    if (k == "ActiveState") s.active_state = v;
    if (k == "SubState") s.sub_state = v;
    if (k == "Result") s.result = v;
    if (k == "MainPID")
      s.main_pid = static_cast<std::uint32_t>(std::strtoul(v.c_str(), nullptr, 10));
  }
  return s;
}

std::unique_ptr<UnitManager> make_dbus_manager(common::SystemdScope scope) {
  return std::make_unique<DbusManager>(scope);
}

std::unique_ptr<UnitManager> make_systemctl_manager(common::SystemdScope scope) {
  return std::make_unique<SystemctlManager>(scope);
}

}  // namespace trading_heal::actuator
