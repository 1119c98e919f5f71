// systemd unit properties over D-Bus (sd-bus), system or user scope, batched: one
// Manager.ListUnitsByNames call for the whole fleet (load/active/sub state), then the per-unit
// properties (MainPID, NRestarts, Result, ActiveEnterTimestamp) as pipelined asynchronous
// Properties.Get calls with a bounded number in flight. Also subscribes to the units'
// PropertiesChanged signals for instant crash detection. Not thread-safe: loop thread only.
//
// The per-unit properties are cached for watched units: systemd announces every change of them
// (all four are EMITS_CHANGE properties) with PropertiesChanged, so they are fetched again only
// when such a signal came for the unit, when its load/active/sub state differs from the cached
// one, and, as a safety net, for each unit every kRefreshEvery queries (round robin). Without a
// watch (--once) every query fetches everything.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "trading_heal/common/clock.hpp"
#include "trading_heal/common/config.hpp"
#include "trading_heal/probe/verdict.hpp"

#include <systemd/sd-bus.h>

namespace trading_heal::probe {

class SystemdBus {
 public:
  // `clock`: the deadlines of query() and watch() (the waits themselves are on the bus's fd).
  static tl::expected<std::unique_ptr<SystemdBus>, std::string> open(
      common::SystemdScope scope, const common::Clock& clock = common::process_clock());
  ~SystemdBus();
  SystemdBus(const SystemdBus&) = delete;
  SystemdBus& operator=(const SystemdBus&) = delete;

  // Facts for `units` (same order); nullopt for a unit systemd did not answer about. Fails as a
  // whole when the bus is broken (the probe then reports UNKNOWN and reconnects).
  tl::expected<std::vector<std::optional<UnitFacts>>, std::string> query(
      const std::vector<std::string>& units, std::chrono::milliseconds timeout);

  // Subscribes to systemd's signals and to PropertiesChanged of every unit in `units`;
  // changes are then reported by drain() as indices into `units`.
  tl::expected<void, std::string> watch(const std::vector<std::string>& units);
  // The bus fd, for the loop's poll (POLLIN).
  int fd() const;
  // Processes everything pending on the bus; returns the indices of watched units that changed.
  std::set<std::size_t> drain();
  // The connection is gone (a transport error, or closed): the owner replaces it.
  bool broken() const;
  std::uint64_t signals_seen() const { return signals_; }
  // Per-unit property calls made so far (for the benchmark: how well the cache works).
  std::uint64_t property_calls() const { return property_calls_; }
  static constexpr std::uint64_t kRefreshEvery = 32;

 private:
  struct Watch {
    SystemdBus* self;
    std::size_t index;
  };
  SystemdBus(sd_bus* bus, const common::Clock& clock) : clock_(clock), bus_(bus) {}
  void unwatch();
  // The PropertiesChanged match of every unit; the failure, or empty.
  std::string install_matches(const std::vector<std::string>& units);
  // query()'s steps. The units needing their properties fetched (index into `units`, object
  // path), in order.
  struct Need {
    std::vector<std::size_t> index;
    std::vector<std::string> path;
  };
  // ListUnitsByNames for the fleet; the reply (its owner unrefs it) or why not.
  tl::expected<sd_bus_message*, std::string> list_units(const std::vector<std::string>& units,
                                                        std::chrono::milliseconds timeout);
  // The reply's states into `out` (one entry per requested name, in order); cached properties
  // reused where nothing changed; returns the units whose properties must be fetched.
  tl::expected<Need, std::string> read_states(sd_bus_message* reply,
                                              const std::vector<std::string>& units,
                                              std::vector<std::optional<UnitFacts>>& out);
  // Unit `i`'s cached properties into `f` when they still hold (the same states, nothing
  // signalled, not due for a refresh); true when reused.
  bool reuse_cached(std::size_t i, const std::string& unit, std::uint32_t job_id, UnitFacts& f);
  // Pipelined per-unit properties for `need`, until `deadline`; a unit whose MainPID or Result
  // could not be read is reset to unknown. Returns why it ended early ("" when all answered).
  std::string fetch_properties(const Need& need, std::vector<std::optional<UnitFacts>>& out,
                               std::chrono::steady_clock::time_point deadline);
  // Keeps at most a window of asynchronous calls in flight: issues call i with `start(i)`
  // (false: stop, the caller recorded why) and dispatches replies until none of the `total`
  // is in flight (`in_flight` is counted up by `start`, down by the reply callbacks), the
  // deadline passes or the bus breaks (then broken_ is set). Returns why it ended early, ""
  // when every call was answered.
  std::string run_window(std::size_t total, const std::size_t& in_flight,
                         const std::function<bool(std::size_t)>& start,
                         std::optional<std::chrono::steady_clock::time_point> deadline);
  static int on_properties_changed(sd_bus_message* m, void* userdata, sd_bus_error* error);
  static int on_match_installed(sd_bus_message* m, void* userdata, sd_bus_error* error);
  const common::Clock& clock_;
  sd_bus* bus_ = nullptr;
  std::vector<sd_bus_slot*> match_slots_;
  std::vector<std::unique_ptr<Watch>> watches_;
  std::set<std::size_t> changed_;
  std::uint64_t signals_ = 0;
  bool broken_ = false;
  std::size_t installing_ = 0;  // AddMatch calls of watch() without a reply yet
  std::string install_error_;   // the first AddMatch failure
  // The cache of the per-unit properties, by unit name; only for watched units.
  struct Cached {
    UnitFacts facts;
    bool valid = false;  // fetched at least once since the watch
    bool dirty = false;  // a PropertiesChanged came since it was fetched
    // Who ends a run: seen active (with no job) on this connection, and a job (stop, restart,
    // start: any, by anyone) on the unit since. Inactive without one = exited by itself.
    bool was_active = false;
    bool job_seen = false;
  };
  static int on_job_new(sd_bus_message* m, void* userdata, sd_bus_error* error);
  sd_bus_slot* job_slot_ = nullptr;
  std::map<std::string, std::size_t, std::less<>> watch_index_;  // unit -> watch index
  std::map<std::string, Cached, std::less<>> cache_;
  std::vector<std::string> watched_;  // watch index -> unit name
  std::uint64_t queries_ = 0;
  std::uint64_t property_calls_ = 0;
};

// /org/freedesktop/systemd1/unit/crypto_2dagent_40BTC_5fUSDT_2eservice
std::string unit_object_path(const std::string& unit);

}  // namespace trading_heal::probe
