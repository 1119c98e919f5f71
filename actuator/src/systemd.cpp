#include "trading_heal/actuator/systemd.hpp"

#include <systemd/sd-bus.h>

#include <cstring>
#include <map>
#include <sstream>

#include "trading_heal/actuator/spawn.hpp"

namespace trading_heal::actuator {
namespace {

constexpr const char* kDest = "org.freedesktop.systemd1";
constexpr const char* kPath = "/org/freedesktop/systemd1";
constexpr const char* kManager = "org.freedesktop.systemd1.Manager";

std::string bus_error(const sd_bus_error& e, int r) {
  if (e.message != nullptr) return e.message;
  return std::strerror(-r);
}

class DbusManager final : public UnitManager {
 public:
  explicit DbusManager(sd_bus* bus) : bus_(bus) {}
  ~DbusManager() override {
    sd_bus_slot_unref(slot_);
    sd_bus_flush_close_unref(bus_);
  }
  DbusManager(const DbusManager&) = delete;
  DbusManager& operator=(const DbusManager&) = delete;

  std::string name() const override { return "dbus"; }

  tl::expected<UnitStatus, std::string> status(const std::string& unit) override {
    char* path = nullptr;
    if (int r = sd_bus_path_encode("/org/freedesktop/systemd1/unit", unit.c_str(), &path); r < 0) {
      return tl::unexpected(std::string("path encode: ") + std::strerror(-r));
    }
    std::string p(path);
    std::free(path);
    UnitStatus s;
    for (auto [iface, prop, out] :
         {std::tuple<const char*, const char*, std::string*>{"org.freedesktop.systemd1.Unit",
                                                             "ActiveState", &s.active_state},
          {"org.freedesktop.systemd1.Unit", "SubState", &s.sub_state},
          {"org.freedesktop.systemd1.Service", "Result", &s.result}}) {
      sd_bus_error err = SD_BUS_ERROR_NULL;
      char* v = nullptr;
      int r = sd_bus_get_property_string(bus_, kDest, p.c_str(), iface, prop, &err, &v);
      if (r < 0) {
        std::string m = bus_error(err, r);
        sd_bus_error_free(&err);
        return tl::unexpected("get " + std::string(prop) + ": " + m);
      }
      *out = v;
      std::free(v);
    }
    sd_bus_error err = SD_BUS_ERROR_NULL;
    std::uint32_t pid = 0;
    int r = sd_bus_get_property_trivial(bus_, kDest, p.c_str(), "org.freedesktop.systemd1.Service",
                                        "MainPID", &err, 'u', &pid);
    if (r < 0) {
      std::string m = bus_error(err, r);
      sd_bus_error_free(&err);
      return tl::unexpected("get MainPID: " + m);
    }
    s.main_pid = pid;
    return s;
  }

  tl::expected<void, std::string> restart(const std::string& unit,
                                          std::chrono::milliseconds timeout) override {
    if (auto r = subscribe(); !r) return r;
    sd_bus_error err = SD_BUS_ERROR_NULL;
    sd_bus_message* reply = nullptr;
    int r = sd_bus_call_method(bus_, kDest, kPath, kManager, "RestartUnit", &err, &reply, "ss",
                               unit.c_str(), "replace");
    if (r < 0) {
      std::string m = bus_error(err, r);
      sd_bus_error_free(&err);
      return tl::unexpected("RestartUnit: " + m);
    }
    const char* job = nullptr;
    r = sd_bus_message_read(reply, "o", &job);
    std::string job_path = r >= 0 && job != nullptr ? job : "";
    sd_bus_message_unref(reply);
    if (job_path.empty()) return tl::unexpected(std::string("RestartUnit: no job path"));
    // JobRemoved may already sit in the read queue: process until ours is seen.
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      if (auto it = done_.find(job_path); it != done_.end()) {
        std::string result = it->second;
        done_.erase(it);
        if (result == "done") return {};
        return tl::unexpected("restart job " + result);
      }
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return tl::unexpected(std::string("restart job did not finish in time"));
      r = sd_bus_process(bus_, nullptr);
      if (r < 0) return tl::unexpected(std::string("bus: ") + std::strerror(-r));
      if (r > 0) continue;
      const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - now);
      r = sd_bus_wait(bus_, static_cast<std::uint64_t>(left.count()));
      if (r < 0 && r != -EINTR) return tl::unexpected(std::string("bus wait: ") + std::strerror(-r));
    }
  }

  tl::expected<void, std::string> reset_failed(const std::string& unit) override {
    sd_bus_error err = SD_BUS_ERROR_NULL;
    int r = sd_bus_call_method(bus_, kDest, kPath, kManager, "ResetFailedUnit", &err, nullptr, "s",
                               unit.c_str());
    if (r < 0) {
      std::string m = bus_error(err, r);
      sd_bus_error_free(&err);
      return tl::unexpected("ResetFailedUnit: " + m);
    }
    return {};
  }

 private:
  static int on_job_removed(sd_bus_message* m, void* userdata, sd_bus_error*) {
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

  tl::expected<void, std::string> subscribe() {
    if (slot_ != nullptr) return {};
    int r = sd_bus_match_signal(bus_, &slot_, kDest, kPath, kManager, "JobRemoved",
                                &DbusManager::on_job_removed, this);
    if (r < 0) return tl::unexpected(std::string("match JobRemoved: ") + std::strerror(-r));
    sd_bus_error err = SD_BUS_ERROR_NULL;
    r = sd_bus_call_method(bus_, kDest, kPath, kManager, "Subscribe", &err, nullptr, "");
    if (r < 0) {
      std::string m = bus_error(err, r);
      sd_bus_error_free(&err);
      sd_bus_slot_unref(slot_);
      slot_ = nullptr;
      return tl::unexpected("Subscribe: " + m);
    }
    return {};
  }

  sd_bus* bus_ = nullptr;
  sd_bus_slot* slot_ = nullptr;
  std::map<std::string, std::string> done_;  // job path -> result
};

class SystemctlManager final : public UnitManager {
 public:
  SystemctlManager(common::SystemdScope scope, bool sudo) : scope_(scope), sudo_(sudo) {}
  std::string name() const override { return sudo_ ? "sudo systemctl" : "systemctl"; }

  tl::expected<UnitStatus, std::string> status(const std::string& unit) override {
    // Reading state needs no privilege: never behind sudo.
    auto r = run_program(
        {"systemctl", scope_ == common::SystemdScope::kUser ? "--user" : "--system", "show", "-p",
         "ActiveState,SubState,Result,MainPID", "--", unit},
        {}, std::chrono::seconds(10));
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
    auto r = run_program(systemctl_argv(scope_, sudo_, verb, unit), {}, timeout);
    if (!r.ok()) return tl::unexpected("systemctl " + verb + ": " + r.describe());
    return {};
  }
  common::SystemdScope scope_;
  bool sudo_;
};

}  // namespace

std::vector<std::string> systemctl_argv(common::SystemdScope scope, bool sudo,
                                        const std::string& verb, const std::string& unit) {
  std::vector<std::string> argv;
  if (sudo) argv = {"sudo", "-n"};
  // The exact form the generated sudoers lines allow: `systemctl restart UNIT` (system scope);
  // a user manager needs no sudo.
  argv.emplace_back("systemctl");
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
    if (k == "MainPID") s.main_pid = static_cast<std::uint32_t>(std::strtoul(v.c_str(), nullptr, 10));
  }
  return s;
}

tl::expected<std::unique_ptr<UnitManager>, std::string> make_dbus_manager(common::SystemdScope scope) {
  sd_bus* bus = nullptr;
  int r = scope == common::SystemdScope::kUser ? sd_bus_open_user(&bus) : sd_bus_open_system(&bus);
  if (r < 0) {
    return tl::unexpected(std::string("cannot connect to the ") +
                          std::string(common::to_string(scope)) + " bus: " + std::strerror(-r));
  }
  return std::unique_ptr<UnitManager>(new DbusManager(bus));
}

std::unique_ptr<UnitManager> make_systemctl_manager(common::SystemdScope scope, bool sudo) {
  return std::make_unique<SystemctlManager>(scope, sudo);
}

}  // namespace trading_heal::actuator
