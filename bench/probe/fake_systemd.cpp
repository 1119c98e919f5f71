// fake_systemd: answers trading-heal-probe's D-Bus calls as systemd's manager does, on a private
// bus (standalone.sh starts a dbus-daemon of its own), so that bench_probe_cycle's bus path can be
// measured without a real user manager. Answers: Manager.ListUnitsByNames (a(ssssssouso), one
// entry per valid name, in order, shaped like systemd's: the testbed units' description, states
// loaded/active/running, the unit's object path, no job), Manager.Subscribe, and per unit the
// properties Service.MainPID (a real process: PID argument, default this process), NRestarts,
// Result and Unit.ActiveEnterTimestamp. With a unit name as 2nd argument it announces
// PropertiesChanged for that unit every 10 ms (to check the probe's watch); otherwise no signals
// (the probe then fetches properties for 1/32 of the units per query, as on a quiet systemd).
// Measurement aid only.
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

std::uint32_t g_pid = 0;
constexpr std::uint64_t kActiveSince = 1795800000000000ULL;  // usec

int list_units(sd_bus_message* m, void* /*userdata*/, sd_bus_error* /*error*/) {
  char** names = nullptr;
  int r = sd_bus_message_read_strv(m, &names);
  if (r < 0) return r;
  sd_bus_message* reply = nullptr;
  r = sd_bus_message_new_method_return(m, &reply);
  if (r >= 0) r = sd_bus_message_open_container(reply, 'a', "(ssssssouso)");
  for (char** n = names; r >= 0 && n != nullptr && *n != nullptr; ++n) {
    char* path = nullptr;
    r = sd_bus_path_encode("/org/freedesktop/systemd1/unit", *n, &path);
    if (r < 0) break;
    std::string inst(*n);
    const auto at = inst.find('@');
    const auto dot = inst.rfind('.');
    if (at != std::string::npos && dot != std::string::npos && dot > at) {
      inst = inst.substr(at + 1, dot - at - 1);
    }
    const std::string desc = "Crypto trading agent " + inst + " (trading-heal testbed simulator)";
    r = sd_bus_message_append(reply, "(ssssssouso)", *n, desc.c_str(), "loaded", "active",
                              "running", "", path, 0U, "", "/");
    std::free(path);  // NOLINT(cppcoreguidelines-no-malloc)
  }
  if (r >= 0) r = sd_bus_message_close_container(reply);
  if (r >= 0) r = sd_bus_send(nullptr, reply, nullptr);
  sd_bus_message_unref(reply);
  for (char** n = names; n != nullptr && *n != nullptr; ++n) std::free(*n);  // NOLINT
  std::free(names);                                                          // NOLINT
  return r < 0 ? r : 1;
}

int subscribe(sd_bus_message* m, void* /*userdata*/, sd_bus_error* /*error*/) {
  return sd_bus_reply_method_return(m, "");
}

int get_u(sd_bus* /*bus*/, const char* /*path*/, const char* /*iface*/, const char* property,
          sd_bus_message* reply, void* /*userdata*/, sd_bus_error* /*error*/) {
  const std::uint32_t v = std::strcmp(property, "MainPID") == 0 ? g_pid : 0;
  return sd_bus_message_append(reply, "u", v);
}

int get_s(sd_bus* /*bus*/, const char* /*path*/, const char* /*iface*/, const char* /*property*/,
          sd_bus_message* reply, void* /*userdata*/, sd_bus_error* /*error*/) {
  return sd_bus_message_append(reply, "s", "success");
}

int get_t(sd_bus* /*bus*/, const char* /*path*/, const char* /*iface*/, const char* /*property*/,
          sd_bus_message* reply, void* /*userdata*/, sd_bus_error* /*error*/) {
  return sd_bus_message_append(reply, "t", kActiveSince);
}

const sd_bus_vtable kManager[] = {
    SD_BUS_VTABLE_START(0), SD_BUS_METHOD("ListUnitsByNames", "as", "a(ssssssouso)", list_units, 0),
    SD_BUS_METHOD("Subscribe", "", "", subscribe, 0), SD_BUS_VTABLE_END};
const sd_bus_vtable kService[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("MainPID", "u", get_u, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("NRestarts", "u", get_u, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Result", "s", get_s, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_VTABLE_END};
const sd_bus_vtable kUnit[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("ActiveEnterTimestamp", "t", get_t, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_VTABLE_END};

int any_unit(sd_bus* /*bus*/, const char* /*path*/, const char* /*iface*/, void* /*userdata*/,
             void** found, sd_bus_error* /*error*/) {
  *found = nullptr;
  return 1;  // every path under .../unit is a unit
}

}  // namespace

int main(int argc, char** argv) {
  g_pid = argc > 1 && std::atoi(argv[1]) > 0 ? static_cast<std::uint32_t>(std::atoi(argv[1]))
                                             : static_cast<std::uint32_t>(::getpid());
  const char* emit = argc > 2 ? argv[2] : nullptr;
  sd_bus* bus = nullptr;
  int r = sd_bus_open_user(&bus);  // DBUS_SESSION_BUS_ADDRESS: the private bus
  if (r < 0) {
    std::fprintf(stderr, "cannot connect: %s\n", std::strerror(-r));
    return 1;
  }
  const char* unit_root = "/org/freedesktop/systemd1/unit";
  r = sd_bus_add_object_vtable(bus, nullptr, "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", kManager, nullptr);
  if (r >= 0) {
    r = sd_bus_add_fallback_vtable(bus, nullptr, unit_root, "org.freedesktop.systemd1.Service",
                                   kService, any_unit, nullptr);
  }
  if (r >= 0) {
    r = sd_bus_add_fallback_vtable(bus, nullptr, unit_root, "org.freedesktop.systemd1.Unit", kUnit,
                                   any_unit, nullptr);
  }
  if (r >= 0) r = sd_bus_request_name(bus, "org.freedesktop.systemd1", 0);
  if (r < 0) {
    std::fprintf(stderr, "cannot serve: %s\n", std::strerror(-r));
    return 1;
  }
  char* emit_path = nullptr;
  if (emit != nullptr) sd_bus_path_encode(unit_root, emit, &emit_path);
  std::fprintf(stderr, "fake systemd1 ready\n");
  for (;;) {
    r = sd_bus_process(bus, nullptr);
    if (r < 0) {
      std::fprintf(stderr, "bus: %s\n", std::strerror(-r));
      return 1;
    }
    if (r > 0) continue;
    sd_bus_wait(bus, emit_path != nullptr ? 10000 : UINT64_MAX);
    if (emit_path != nullptr) {
      sd_bus_emit_properties_changed(bus, emit_path, "org.freedesktop.systemd1.Service", "MainPID",
                                     nullptr);
    }
  }
}
