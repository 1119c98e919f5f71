// The learning query of TRADING_HEAL_STALL_THRESHOLD=auto (kLearnQuerySql) against PostgreSQL, on
// a thread and a connection of its own: the gaps of a week of decisions are aggregated by the
// server in a fraction of a second to seconds, and neither the probe's loop nor its fleet query
// waits for that. The loop starts a learning and is told through an eventfd when its answer (the
// gap summaries, parsed on the worker) is ready. One connection per learning (hourly), closed
// after it; a statement_timeout bounds it, and the destructor cuts a running one short.
// Thread-safe where marked; otherwise owned by the loop thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "trading_heal/probe/learned_threshold.hpp"

namespace trading_heal::probe {

struct LearnAnswer {
  bool ok = false;
  std::string error;  // when !ok (never holds the connection string)
  std::map<std::pair<std::string, std::string>, GapSummary> summaries;
  std::size_t rows = 0;  // rows the query returned ((symbol, profile, hour) groups)
  double seconds = 0;    // wall time of the query (connect excluded)
};

class ThresholdLearner {
 public:
  ThresholdLearner(std::string conninfo, std::chrono::milliseconds statement_timeout,
                   std::vector<std::pair<std::string, std::string>> keys);
  ~ThresholdLearner();
  ThresholdLearner(const ThresholdLearner&) = delete;
  ThresholdLearner& operator=(const ThresholdLearner&) = delete;

  // Starts a learning over the decisions since `since` (epoch seconds); false while one runs.
  bool start(double since);
  int event_fd() const { return event_fd_; }
  std::optional<LearnAnswer> take();  // non-blocking
  std::optional<LearnAnswer> wait(std::chrono::steady_clock::time_point deadline);

 private:
  void run();
  LearnAnswer execute(double since);

  std::string conninfo_;
  std::chrono::milliseconds statement_timeout_;
  std::vector<std::pair<std::string, std::string>> keys_;
  int event_fd_ = -1;
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable done_cv_;
  std::optional<double> request_;
  std::optional<LearnAnswer> answer_;
  bool running_ = false;
  bool stop_ = false;
  int socket_ = -1;  // the running learning's socket, for the destructor
  std::thread worker_;
};

}  // namespace trading_heal::probe
