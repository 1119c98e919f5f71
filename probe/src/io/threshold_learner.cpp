// The learning query's worker (libpqxx 6.4 API).
#include "trading_heal/probe/threshold_learner.hpp"

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <pqxx/pqxx>

#include "trading_heal/probe/fleet_query.hpp"

namespace trading_heal::probe {

using Clock = std::chrono::steady_clock;

ThresholdLearner::ThresholdLearner(std::string conninfo,
                                   std::chrono::milliseconds statement_timeout,
                                   std::vector<std::pair<std::string, std::string>> keys)
    : conninfo_(std::move(conninfo)),
      statement_timeout_(statement_timeout),
      keys_(std::move(keys)),
      event_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  worker_ = std::thread([this] { run(); });
}

ThresholdLearner::~ThresholdLearner() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    if (running_ && socket_ >= 0) ::shutdown(socket_, SHUT_RDWR);
  }
  cv_.notify_all();
  worker_.join();
  if (event_fd_ >= 0) ::close(event_fd_);
}

bool ThresholdLearner::start(double since) {
  {
    std::lock_guard lock(mu_);
    if (running_ || request_) return false;
    answer_.reset();
    request_ = since;
  }
  cv_.notify_one();
  return true;
}

std::optional<LearnAnswer> ThresholdLearner::take() {
  std::uint64_t drained = 0;
  [[maybe_unused]] auto n = ::read(event_fd_, &drained, sizeof drained);
  std::lock_guard lock(mu_);
  auto a = std::move(answer_);
  answer_.reset();
  return a;
}

std::optional<LearnAnswer> ThresholdLearner::wait(Clock::time_point deadline) {
  std::unique_lock lock(mu_);
  done_cv_.wait_until(lock, deadline, [this] { return answer_.has_value(); });
  auto a = std::move(answer_);
  answer_.reset();
  return a;
}

void ThresholdLearner::run() {
  for (;;) {
    double since = 0;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || request_.has_value(); });
      if (stop_) break;
      since = *request_;
      request_.reset();
      running_ = true;
    }
    LearnAnswer a = execute(since);
    {
      std::lock_guard lock(mu_);
      running_ = false;
      socket_ = -1;
      answer_ = std::move(a);
    }
    done_cv_.notify_all();
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(event_fd_, &one, sizeof one);
  }
}

LearnAnswer ThresholdLearner::execute(double since) {
  LearnAnswer a;
  std::vector<std::string> symbols;
  std::vector<std::string> profiles;
  for (const auto& [s, p] : keys_) {
    symbols.push_back(s);
    profiles.push_back(p);
  }
  char since_text[32];
  std::snprintf(since_text, sizeof since_text, "%.6f", since);
  try {
    pqxx::connection c(conninfo_);
    {
      std::lock_guard lock(mu_);
      if (stop_) return a;
      socket_ = c.sock();
    }
    pqxx::nontransaction setup(c);
    setup.exec("SET statement_timeout = " + std::to_string(statement_timeout_.count()));
    setup.commit();
    const auto t0 = Clock::now();
    pqxx::read_transaction t(c);
    const pqxx::result r = t.exec_params(kLearnQuerySql, pg_text_array(symbols),
                                         pg_text_array(profiles), std::string(since_text));
    a.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    std::vector<LearnRow> rows;
    rows.reserve(r.size());
    for (const auto& row : r) {
      LearnRow out;
      out.symbol = row[0].as<std::string>();
      out.profile = row[1].as<std::string>();
      out.hour = row[2].as<int>();
      out.count = row[3].as<std::size_t>();
      out.p99_s = row[4].as<double>();
      out.sum_s = row[5].as<double>();
      auto longest = parse_float_array(row[6].as<std::string>());
      if (!longest)
        throw std::runtime_error("unreadable longest gaps: " + row[6].as<std::string>());
      out.longest = std::move(*longest);
      rows.push_back(std::move(out));
    }
    a.rows = rows.size();
    a.summaries = summaries_of(rows);
    a.ok = true;
  } catch (const std::exception& e) {
    a.error = e.what();
    for (char& ch : a.error) {
      if (ch == '\n' || ch == '\t') ch = ' ';  // one log line
    }
    while (!a.error.empty() && (a.error.back() == '\n' || a.error.back() == ' ')) {
      a.error.pop_back();
    }
  }
  return a;
}

}  // namespace trading_heal::probe
