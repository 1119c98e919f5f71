// sd-bus adapter: batched unit properties and PropertiesChanged subscriptions.
#include "trading_heal/probe/systemd_bus.hpp"

#include <systemd/sd-bus.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "trading_heal/common/bus.hpp"

namespace trading_heal::probe {
namespace {

constexpr const char* kDest = "org.freedesktop.systemd1";
constexpr const char* kManagerPath = "/org/freedesktop/systemd1";
constexpr const char* kManager = "org.freedesktop.systemd1.Manager";
constexpr const char* kProps = "org.freedesktop.DBus.Properties";
// At most this many Get calls in flight: the system bus limits pending replies per connection
// (dbus-daemon's max_replies_per_connection), and a window keeps the queues short anyway.
constexpr std::size_t kWindow = 96;

std::string errno_text(int r) { return std::strerror(r < 0 ? -r : r); }

struct Prop {
  const char* iface;
  const char* name;
  char type;
};
constexpr Prop kUnitProps[] = {
    {"org.freedesktop.systemd1.Service", "MainPID", 'u'},
    {"org.freedesktop.systemd1.Service", "NRestarts", 'u'},
    {"org.freedesktop.systemd1.Service", "Result", 's'},
    {"org.freedesktop.systemd1.Unit", "ActiveEnterTimestamp", 't'},
};
constexpr std::size_t kPropCount = std::size(kUnitProps);

struct GetCall {
  UnitFacts* facts = nullptr;
  std::size_t prop = 0;
  bool done = false;
  bool failed = false;
  std::size_t* outstanding = nullptr;
};

int on_get_reply(sd_bus_message* m, void* userdata, sd_bus_error* /*error*/) {
  auto* c = static_cast<GetCall*>(userdata);
  c->done = true;
  --*c->outstanding;
  if (sd_bus_message_is_method_error(m, nullptr) != 0) {
    c->failed = true;
    return 0;
  }
  const Prop& p = kUnitProps[c->prop];
  const char sig[2] = {p.type, '\0'};
  int r = sd_bus_message_enter_container(m, 'v', sig);
  if (r < 0) {
    c->failed = true;
    return 0;
  }
  UnitFacts& f = *c->facts;
  if (p.type == 'u') {
    std::uint32_t v = 0;
    r = sd_bus_message_read_basic(m, 'u', &v);
    if (c->prop == 0) f.main_pid = v;
    if (c->prop == 1) f.n_restarts = v;
  } else if (p.type == 's') {
    const char* s = nullptr;
    r = sd_bus_message_read_basic(m, 's', &s);
    if (r >= 0 && s != nullptr) f.result = s;
  } else {
    std::uint64_t usec = 0;
    r = sd_bus_message_read_basic(m, 't', &usec);
    if (usec > 0) f.active_enter_ts = static_cast<double>(usec) / 1e6;
  }
  if (r < 0) c->failed = true;
  return 0;
}

}  // namespace

std::string unit_object_path(const std::string& unit) {
  char* path = nullptr;
  if (sd_bus_path_encode("/org/freedesktop/systemd1/unit", unit.c_str(), &path) < 0) return {};
  std::string out(path);
  std::free(path);  // NOLINT(cppcoreguidelines-no-malloc): sd-bus allocates with malloc
  return out;
}

tl::expected<std::unique_ptr<SystemdBus>, std::string> SystemdBus::open(
    common::SystemdScope scope, const common::Clock& clock) {
  auto bus = common::open_bus(scope);  // handshake completed: usable however long it idles
  if (!bus) return tl::unexpected(bus.error());
  return std::unique_ptr<SystemdBus>(new SystemdBus(bus->release(), clock));
}

SystemdBus::~SystemdBus() {
  unwatch();
  if (bus_ != nullptr) sd_bus_flush_close_unref(bus_);
}

void SystemdBus::unwatch() {
  for (auto* s : match_slots_) sd_bus_slot_unref(s);
  match_slots_.clear();
  sd_bus_slot_unref(job_slot_);
  job_slot_ = nullptr;
  watch_index_.clear();
  watches_.clear();
  watched_.clear();
  cache_.clear();
}

int SystemdBus::fd() const { return sd_bus_get_fd(bus_); }

bool SystemdBus::broken() const { return broken_ || sd_bus_is_open(bus_) <= 0; }

tl::expected<std::vector<std::optional<UnitFacts>>, std::string> SystemdBus::query(
    const std::vector<std::string>& units, std::chrono::milliseconds timeout) {
  const auto deadline = clock_.mono() + timeout;
  std::vector<std::optional<UnitFacts>> out(units.size());
  if (units.empty()) return out;
  // 1. One call for the fleet's load/active/sub states.
  auto reply = list_units(units, timeout);
  if (!reply) return tl::unexpected(reply.error());
  // 2. Signals queued during the synchronous call are dispatched first, so that they mark their
  // units before the reply's states are compared with the cache.
  int r = 0;
  while ((r = sd_bus_process(bus_, nullptr)) > 0) {
  }
  if (r < 0) {
    sd_bus_message_unref(*reply);
    broken_ = true;
    return tl::unexpected("bus processing failed: " + errno_text(r));
  }
  ++queries_;
  // 3. The states, and which units' properties must be fetched.
  auto need = read_states(*reply, units, out);
  sd_bus_message_unref(*reply);
  if (!need) return tl::unexpected(need.error());
  // 4. Pipelined per-unit properties, for the units whose cached ones may be stale.
  const std::string failure = fetch_properties(*need, out, deadline);
  if (broken_) return tl::unexpected(failure);
  for (const std::size_t i : need->index) {
    if (!out[i]) continue;
    auto it = cache_.find(units[i]);
    if (it == cache_.end()) continue;  // not watched: never cached
    it->second.facts = *out[i];
    it->second.valid = true;
  }
  return out;
}

tl::expected<sd_bus_message*, std::string> SystemdBus::list_units(
    const std::vector<std::string>& units, std::chrono::milliseconds timeout) {
  sd_bus_message* call = nullptr;
  sd_bus_message* reply = nullptr;
  sd_bus_error err{};  // SD_BUS_ERROR_NULL (a C compound literal)
  std::vector<const char*> names;
  names.reserve(units.size() + 1);
  for (const auto& u : units) names.push_back(u.c_str());
  names.push_back(nullptr);
  int r = sd_bus_message_new_method_call(bus_, &call, kDest, kManagerPath, kManager,
                                         "ListUnitsByNames");
  if (r >= 0) r = sd_bus_message_append_strv(call, const_cast<char**>(names.data()));
  if (r >= 0) {
    r = sd_bus_call(bus_, call, static_cast<std::uint64_t>(timeout.count()) * 1000, &err, &reply);
  }
  sd_bus_message_unref(call);
  if (r < 0) {
    std::string msg = "ListUnitsByNames failed: " +
                      std::string(err.message != nullptr ? err.message : errno_text(r));
    sd_bus_error_free(&err);
    if (common::bus_connection_lost(bus_, r)) broken_ = true;
    return tl::unexpected(msg);
  }
  return reply;
}

// One entry per requested name in the request's order (systemd skips only invalid names; an entry
// named otherwise, e.g. an alias's real name, is not used). Only the object paths of units whose
// properties must be fetched are kept.
tl::expected<SystemdBus::Need, std::string> SystemdBus::read_states(
    sd_bus_message* reply, const std::vector<std::string>& units,
    std::vector<std::optional<UnitFacts>>& out) {
  Need need;
  std::size_t cursor = 0;
  int r = sd_bus_message_enter_container(reply, 'a', "(ssssssouso)");
  while (r > 0) {
    const char *name, *desc, *load, *active, *sub, *following, *path, *job_type, *job_path;
    std::uint32_t job_id = 0;
    r = sd_bus_message_read(reply, "(ssssssouso)", &name, &desc, &load, &active, &sub, &following,
                            &path, &job_id, &job_type, &job_path);
    if (r <= 0) break;
    std::size_t i = cursor;
    while (i < units.size() && units[i] != name) ++i;
    if (i == units.size()) continue;  // not a name we asked for
    cursor = i + 1;
    UnitFacts& f = out[i].emplace();
    f.load_state = load;
    f.active_state = active;
    f.sub_state = sub;
    if (f.load_state == "not-found" || path == nullptr || *path == '\0') continue;
    if (reuse_cached(i, units[i], job_id, f)) continue;
    need.index.push_back(i);
    need.path.emplace_back(path);
  }
  if (r < 0) return tl::unexpected("ListUnitsByNames: bad reply: " + errno_text(r));
  return need;
}

bool SystemdBus::reuse_cached(std::size_t i, const std::string& unit, std::uint32_t job_id,
                              UnitFacts& f) {
  auto it = cache_.find(unit);
  if (it == cache_.end()) return false;
  Cached& c = it->second;
  if (job_id != 0) c.job_seen = true;
  if (f.active_state == "active" && job_id == 0) {
    c.was_active = true;
    c.job_seen = false;
  }
  f.exited_unbidden = f.active_state == "inactive" && c.was_active && !c.job_seen;
  if (c.valid && !c.dirty && c.facts.load_state == f.load_state &&
      c.facts.active_state == f.active_state && c.facts.sub_state == f.sub_state &&
      (i + queries_) % kRefreshEvery != 0) {
    f.main_pid = c.facts.main_pid;
    f.n_restarts = c.facts.n_restarts;
    f.result = c.facts.result;
    f.active_enter_ts = c.facts.active_enter_ts;
    return true;
  }
  c.dirty = false;  // a signal from now on marks it again
  return false;
}

std::string SystemdBus::fetch_properties(const Need& need,
                                         std::vector<std::optional<UnitFacts>>& out,
                                         std::chrono::steady_clock::time_point deadline) {
  std::vector<GetCall> calls;
  calls.reserve(need.index.size() * kPropCount);
  std::size_t outstanding = 0;
  for (const std::size_t i : need.index) {
    for (std::size_t p = 0; p < kPropCount; ++p) {
      calls.push_back(GetCall{&*out[i], p, false, false, &outstanding});
    }
  }
  property_calls_ += calls.size();
  std::vector<sd_bus_slot*> slots(calls.size(), nullptr);
  // Calls were pushed unit by unit, kPropCount each: call c is for need.index[c / kPropCount].
  // A call that cannot be issued leaves its unit unknown, like one that gets no reply.
  std::string failure = run_window(
      calls.size(), outstanding,
      [&](std::size_t c) {
        const Prop& p = kUnitProps[calls[c].prop];
        if (sd_bus_call_method_async(bus_, &slots[c], kDest, need.path[c / kPropCount].c_str(),
                                     kProps, "Get", on_get_reply, &calls[c], "ss", p.iface,
                                     p.name) < 0) {
          calls[c].done = true;
          calls[c].failed = true;
        } else {
          ++outstanding;
        }
        return true;
      },
      deadline);
  for (auto* s : slots) sd_bus_slot_unref(s);  // cancels calls still pending
  // A unit whose MainPID or Result could not be read is not known.
  for (std::size_t c = 0; c < calls.size(); ++c) {
    if ((!calls[c].done || calls[c].failed) && calls[c].prop != 3) {
      out[need.index[c / kPropCount]].reset();
    }
  }
  return failure;
}

std::string SystemdBus::run_window(std::size_t total, const std::size_t& in_flight,
                                   const std::function<bool(std::size_t)>& start,
                                   std::optional<std::chrono::steady_clock::time_point> deadline) {
  using namespace std::chrono;
  std::size_t next = 0;
  while (next < total || in_flight > 0) {
    while (next < total && in_flight < kWindow) {
      if (!start(next)) return "stopped";
      ++next;
    }
    int r = sd_bus_process(bus_, nullptr);
    if (r < 0) {
      broken_ = true;
      return "bus processing failed: " + errno_text(r);
    }
    if (r > 0) continue;
    std::uint64_t wait_us = UINT64_MAX;
    if (deadline) {
      const auto now = clock_.mono();
      if (now >= *deadline) return "timed out waiting for replies";
      wait_us = static_cast<std::uint64_t>(duration_cast<microseconds>(*deadline - now).count());
    }
    r = sd_bus_wait(bus_, wait_us);
    if (r < 0 && r != -EINTR) {
      broken_ = true;
      return "bus wait failed: " + errno_text(r);
    }
  }
  return {};
}

int SystemdBus::on_job_new(sd_bus_message* m, void* userdata, sd_bus_error* /*error*/) {
  auto* self = static_cast<SystemdBus*>(userdata);
  std::uint32_t id = 0;
  const char* path = nullptr;
  const char* unit = nullptr;
  if (sd_bus_message_read(m, "uos", &id, &path, &unit) < 0 || unit == nullptr) return 0;
  auto w = self->watch_index_.find(std::string_view(unit));
  if (w == self->watch_index_.end()) return 0;
  if (auto c = self->cache_.find(std::string_view(unit)); c != self->cache_.end()) {
    c->second.job_seen = true;
  }
  self->changed_.insert(w->second);
  return 0;
}

int SystemdBus::on_properties_changed(sd_bus_message* /*m*/, void* userdata,
                                      sd_bus_error* /*error*/) {
  auto* w = static_cast<Watch*>(userdata);
  w->self->changed_.insert(w->index);
  if (w->index < w->self->watched_.size()) {
    auto it = w->self->cache_.find(w->self->watched_[w->index]);
    if (it != w->self->cache_.end()) it->second.dirty = true;
  }
  ++w->self->signals_;
  return 0;
}

int SystemdBus::on_match_installed(sd_bus_message* m, void* userdata, sd_bus_error* /*error*/) {
  auto* w = static_cast<Watch*>(userdata);
  --w->self->installing_;
  if (sd_bus_message_is_method_error(m, nullptr) != 0) {
    const sd_bus_error* e = sd_bus_message_get_error(m);
    if (w->self->install_error_.empty()) {
      w->self->install_error_ =
          e != nullptr && e->message != nullptr ? e->message : "no reason given";
    }
  }
  return 0;
}

tl::expected<void, std::string> SystemdBus::watch(const std::vector<std::string>& units) {
  unwatch();
  watched_ = units;
  sd_bus_error err{};  // SD_BUS_ERROR_NULL (a C compound literal)
  int r = sd_bus_call_method(bus_, kDest, kManagerPath, kManager, "Subscribe", &err, nullptr, "");
  if (r < 0) {
    std::string msg =
        "Subscribe failed: " + std::string(err.message != nullptr ? err.message : errno_text(r));
    sd_bus_error_free(&err);
    if (common::bus_connection_lost(bus_, r)) broken_ = true;
    return tl::unexpected(msg);
  }
  // Cache only what is watched: a unit's cached properties are stale the moment it changes.
  for (std::size_t i = 0; i < units.size(); ++i) {
    cache_.emplace(units[i], Cached{});
    watch_index_.emplace(units[i], i);
  }
  // Jobs on the watched units (an operator's stop is one; an agent exiting by itself has none).
  r = sd_bus_match_signal(bus_, &job_slot_, kDest, kManagerPath, kManager, "JobNew",
                          &SystemdBus::on_job_new, this);
  if (r < 0) {
    if (common::bus_connection_lost(bus_, r)) broken_ = true;
    unwatch();
    return tl::unexpected("cannot watch jobs: " + errno_text(r));
  }
  if (auto failure = install_matches(units); !failure.empty()) {
    unwatch();  // no cache without the signals that keep it fresh
    return tl::unexpected(failure);
  }
  return {};
}

// Pipelined AddMatch calls, at most kWindow in flight, their replies consumed as they come: a
// thousand matches cost no thousand round trips, and no thousand replies wait in the read queue
// for the next synchronous call (about 1 MiB at 1000 units).
std::string SystemdBus::install_matches(const std::vector<std::string>& units) {
  installing_ = 0;
  install_error_.clear();
  std::string failure;
  watches_.reserve(units.size());
  match_slots_.reserve(units.size());
  // sd-bus fails each call that gets no reply within its method timeout, so this ends.
  const std::string ended = run_window(
      units.size(), installing_,
      [&](std::size_t i) {
        watches_.push_back(std::make_unique<Watch>(Watch{this, i}));
        sd_bus_slot* slot = nullptr;
        const std::string path = unit_object_path(units[i]);
        const int rc =
            sd_bus_match_signal_async(bus_, &slot, kDest, path.c_str(), kProps, "PropertiesChanged",
                                      &SystemdBus::on_properties_changed,
                                      &SystemdBus::on_match_installed, watches_.back().get());
        if (rc < 0) {
          failure = "cannot watch " + units[i] + ": " + errno_text(rc);
          return false;
        }
        match_slots_.push_back(slot);
        ++installing_;
        return true;
      },
      std::nullopt);
  if (failure.empty()) failure = ended;
  if (failure.empty() && !install_error_.empty()) failure = "AddMatch failed: " + install_error_;
  return failure;
}

std::set<std::size_t> SystemdBus::drain() {
  int r = 0;
  while ((r = sd_bus_process(bus_, nullptr)) > 0) {
  }
  if (r < 0) broken_ = true;
  std::set<std::size_t> changed;
  changed.swap(changed_);
  return changed;
}

}  // namespace trading_heal::probe
