// The fleet query against PostgreSQL (libpqxx 6.4), run on a worker thread so that a slow, hung
// or dead PostgreSQL never stalls the probe's loop. The loop submits one request per cycle and
// is told through an eventfd when the answer is ready. At connect it detects whether the optional
// composite index exists (pg_index, valid indexes only) and reports it with every answer.
// Read-only transaction, prepared statement (custom plans, no JIT), statement_timeout and
// connect_timeout, reconnect with exponential backoff; a request stuck past its hard deadline
// gets its socket shut down from the loop thread.
// Thread-safe where marked; otherwise owned by the loop thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "trading_heal/common/clock.hpp"
#include "trading_heal/probe/fleet_query.hpp"

namespace trading_heal::probe {

struct FleetAnswer {
  bool ok = false;
  std::string error;             // when !ok (never holds the connection string)
  std::vector<FleetRow> rows;    // one per key, in key order
  double seconds = 0;            // wall time of the query (connect excluded)
  bool composite_index = false;  // btc.decisions has a valid (symbol, profile, timestamp) index
  std::uint64_t generation = 0;  // which submit() this answers
};

struct PgSettings {
  std::string conninfo;  // with connect_timeout; never logged
  std::chrono::milliseconds statement_timeout{5000};
  std::chrono::milliseconds backoff_min{500};
  std::chrono::milliseconds backoff_max{30000};
};

class PgStore {
 public:
  // `clock`: the backoff and the stuck-query limit (waits are on the real clock).
  explicit PgStore(PgSettings settings, const common::Clock& clock = common::process_clock());
  ~PgStore();  // joins the worker (a stuck query is aborted first)
  PgStore(const PgStore&) = delete;
  PgStore& operator=(const PgStore&) = delete;

  // Queues one fleet query; false when the previous one has not finished (the cycle then goes
  // on without the database). Returns the request's generation through `generation`.
  bool submit(FleetPlan plan, std::uint64_t* generation = nullptr);
  // Readable when an answer is waiting (for the loop's poll).
  int event_fd() const { return event_fd_; }
  // Takes the waiting answer, if any (non-blocking).
  std::optional<FleetAnswer> take();
  // Blocks until an answer is ready or `deadline` passes (for --once).
  std::optional<FleetAnswer> wait(std::chrono::steady_clock::time_point deadline);
  bool busy() const;
  // Shuts down the socket of a request running for longer than `limit` (hung server).
  // Returns true if it did.
  bool abort_if_stuck(std::chrono::milliseconds limit);
  bool connected() const;

 private:
  void run();
  FleetAnswer execute(const FleetPlan& plan);
  // The steps of execute(), on the worker thread.
  bool connect(FleetAnswer& a);  // false: `a` holds why
  void query(const FleetPlan& plan, FleetAnswer& a);
  void drop_if_broken(const FleetAnswer& a);

  PgSettings settings_;
  const common::Clock& clock_;
  int event_fd_ = -1;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable done_cv_;
  std::optional<FleetPlan> request_;
  std::optional<FleetAnswer> answer_;
  std::uint64_t generation_ = 0;
  bool running_ = false;  // a request is being executed
  std::chrono::steady_clock::time_point started_{};
  int socket_ = -1;  // the live connection's socket, for abort_if_stuck
  bool connected_ = false;
  bool stop_ = false;
  // Worker-thread state.
  struct Conn;
  std::unique_ptr<Conn> conn_;
  std::chrono::steady_clock::time_point next_attempt_{};
  std::chrono::milliseconds backoff_{0};
  bool composite_ = false;  // detected at connect
  std::thread worker_;
};

// Appends libpq options to a conninfo (URI or key=value form).
std::string with_pg_option(const std::string& conninfo, const std::string& key,
                           const std::string& value);

}  // namespace trading_heal::probe
