// PostgreSQL worker for the fleet query (libpqxx 6.4 API).
#include "trading_heal/probe/pg_store.hpp"

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <pqxx/pqxx>

namespace trading_heal::probe {

using Clock = std::chrono::steady_clock;

namespace {
// A valid index on btc.decisions whose leading columns are (symbol, profile, timestamp).
constexpr const char* kCompositeIndexSql =
    "SELECT EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = 'btc.decisions'::regclass"
    " AND x.indisvalid AND x.indpred IS NULL AND x.indnatts >= 3 AND (SELECT "
    "array_agg(a.attname::text ORDER BY c.n)"
    " FROM unnest(x.indkey) WITH ORDINALITY AS c(attnum, n) JOIN pg_attribute a"
    " ON a.attrelid = x.indrelid AND a.attnum = c.attnum WHERE c.n <= 3)"
    " = ARRAY['symbol', 'profile', 'timestamp'])";
}  // namespace

struct PgStore::Conn {
  explicit Conn(const std::string& conninfo) : c(conninfo) {}
  pqxx::connection c;
};

std::string with_pg_option(const std::string& conninfo, const std::string& key,
                           const std::string& value) {
  const bool uri = conninfo.rfind("postgresql://", 0) == 0 || conninfo.rfind("postgres://", 0) == 0;
  if (uri)
    return conninfo + (conninfo.find('?') == std::string::npos ? "?" : "&") + key + "=" + value;
  return conninfo + " " + key + "=" + value;
}

PgStore::PgStore(PgSettings settings, const common::Clock& clock)
    : settings_(std::move(settings)), clock_(clock) {
  event_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  worker_ = std::thread([this] { run(); });
}

PgStore::~PgStore() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    if (running_ && socket_ >= 0) ::shutdown(socket_, SHUT_RDWR);
  }
  cv_.notify_all();
  worker_.join();
  if (event_fd_ >= 0) ::close(event_fd_);
}

bool PgStore::submit(FleetPlan plan, std::uint64_t* generation) {
  {
    std::lock_guard lock(mu_);
    if (running_ || request_) return false;
    answer_.reset();
    request_ = std::move(plan);
    ++generation_;
    if (generation != nullptr) *generation = generation_;
  }
  cv_.notify_one();
  return true;
}

std::optional<FleetAnswer> PgStore::take() {
  std::uint64_t drained = 0;
  [[maybe_unused]] auto n = ::read(event_fd_, &drained, sizeof drained);
  std::lock_guard lock(mu_);
  auto a = std::move(answer_);
  answer_.reset();
  return a;
}

std::optional<FleetAnswer> PgStore::wait(Clock::time_point deadline) {
  std::unique_lock lock(mu_);
  done_cv_.wait_until(lock, deadline, [this] { return answer_.has_value(); });
  auto a = std::move(answer_);
  answer_.reset();
  return a;
}

bool PgStore::busy() const {
  std::lock_guard lock(mu_);
  return running_ || request_.has_value();
}

bool PgStore::connected() const {
  std::lock_guard lock(mu_);
  return connected_;
}

bool PgStore::abort_if_stuck(std::chrono::milliseconds limit) {
  std::lock_guard lock(mu_);
  if (!running_ || socket_ < 0 || clock_.mono() - started_ < limit) return false;
  // The worker's blocking read fails with an error; it then drops the connection.
  ::shutdown(socket_, SHUT_RDWR);
  return true;
}

void PgStore::run() {
  for (;;) {
    FleetPlan plan;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || request_.has_value(); });
      if (stop_) break;
      plan = std::move(*request_);
      request_.reset();
      running_ = true;
      started_ = clock_.mono();
    }
    FleetAnswer a = execute(plan);
    {
      std::lock_guard lock(mu_);
      running_ = false;
      a.generation = generation_;
      answer_ = std::move(a);
    }
    done_cv_.notify_all();
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(event_fd_, &one, sizeof one);
  }
  std::lock_guard lock(mu_);
  socket_ = -1;
  conn_.reset();
}

namespace {

// Everything set on a new connection before its first query.
void set_up(pqxx::connection& c, std::chrono::milliseconds statement_timeout) {
  pqxx::nontransaction setup(c);
  setup.exec("SET statement_timeout = " + std::to_string(statement_timeout.count()));
  setup.exec("SET default_transaction_read_only = on");
  // The range scan must be planned with its real bounds (a generic plan guesses a third of the
  // table for `timestamp > $3`).
  setup.exec("SET plan_cache_mode = force_custom_plan");
  setup.commit();
  // No JIT: the custom plan's estimate exceeds jit_above_cost (100000 by default: the LATERAL
  // branch is costed for every key, even in cycles where no key uses it), and the LLVM
  // compilation of ~50 functions took 17 ms of a 20 ms query at 1000 keys, every cycle. Its own
  // statement: a server without the setting (before PostgreSQL 11) has no JIT.
  try {
    pqxx::nontransaction nojit(c);
    nojit.exec("SET jit = off");
  } catch (const pqxx::broken_connection&) {
    throw;
  } catch (const std::exception&) {
  }
}

// Whether btc.decisions has the composite index. Only chooses the catch-up's form: when it
// cannot tell (false), the range scans still work.
bool has_composite_index(pqxx::connection& c) {
  try {
    pqxx::nontransaction probe_ix(c);
    const pqxx::result ix = probe_ix.exec(kCompositeIndexSql);
    return !ix.empty() && ix[0][0].as<bool>();
  } catch (const pqxx::broken_connection&) {
    throw;
  } catch (const std::exception&) {
  }
  return false;
}

void trim_newlines(std::string& s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
}

}  // namespace

FleetAnswer PgStore::execute(const FleetPlan& plan) {
  FleetAnswer a;
  if (!conn_ && !connect(a)) return a;
  const auto t0 = clock_.mono();
  query(plan, a);
  a.seconds = std::chrono::duration<double>(clock_.mono() - t0).count();
  trim_newlines(a.error);
  if (!a.ok) drop_if_broken(a);
  return a;
}

bool PgStore::connect(FleetAnswer& a) {
  if (clock_.mono() < next_attempt_) {
    a.error = "reconnect backoff";
    return false;
  }
  try {
    auto c = std::make_unique<Conn>(settings_.conninfo);
    set_up(c->c, settings_.statement_timeout);
    composite_ = has_composite_index(c->c);
    c->c.prepare("fleet_ages", kFleetQuerySql);
    std::lock_guard lock(mu_);
    socket_ = c->c.sock();
    connected_ = true;
    conn_ = std::move(c);
    backoff_ = std::chrono::milliseconds(0);
    return true;
  } catch (const std::exception& e) {
    backoff_ = std::clamp(backoff_ * 2, settings_.backoff_min, settings_.backoff_max);
    next_attempt_ = clock_.mono() + backoff_;
    a.error = std::string("connect failed: ") + e.what();
    trim_newlines(a.error);
    return false;
  }
}

void PgStore::query(const FleetPlan& plan, FleetAnswer& a) {
  const FleetParams p = fleet_params(plan);
  const std::size_t n = plan.symbols.size();
  auto opt = [](const std::optional<std::string>& v) { return v ? v->c_str() : nullptr; };
  try {
    pqxx::read_transaction t(conn_->c);
    const pqxx::result r = t.exec_prepared("fleet_ages", p.symbols, p.profiles, opt(p.since),
                                           opt(p.slice_lo), opt(p.slice_hi), p.check, p.lateral);
    a.rows.resize(n);
    for (const auto& row : r) {
      const auto i = row[0].as<long>() - 1;  // ORDINALITY is 1-based
      if (i < 0 || static_cast<std::size_t>(i) >= n) continue;
      FleetRow& out = a.rows[static_cast<std::size_t>(i)];
      if (!row[1].is_null()) {  // one key may get a row from the scan and one from LATERAL
        const double ts = row[1].as<double>();
        out.newest_ts = std::max(out.newest_ts.value_or(ts), ts);
      }
      if (!row[2].is_null()) out.exists = row[2].as<bool>();
    }
    a.composite_index = composite_;
    a.ok = true;
  } catch (const pqxx::broken_connection& e) {
    a.error = std::string("connection lost: ") + e.what();
  } catch (const std::exception& e) {
    a.error = std::string("query failed: ") + e.what();
  }
}

// Any failure may have left the connection unusable: start again (after a backoff).
void PgStore::drop_if_broken(const FleetAnswer& a) {
  bool broken = false;
  try {
    broken = !conn_->c.is_open();
  } catch (...) {
    broken = true;
  }
  if (!broken && a.error.rfind("connection lost", 0) != 0) return;
  std::lock_guard lock(mu_);
  socket_ = -1;
  connected_ = false;
  conn_.reset();
  backoff_ = std::clamp(backoff_ * 2, settings_.backoff_min, settings_.backoff_max);
  next_attempt_ = clock_.mono() + backoff_;
}

}  // namespace trading_heal::probe
