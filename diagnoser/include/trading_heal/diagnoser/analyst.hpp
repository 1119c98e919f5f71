// One diagnosis, start to end: journal → redaction → rules → cache → LLM → validated Diagnosis;
// and the worker pool that runs them off the loop thread. Blocking: never call on the loop.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <tl/expected.hpp>
#include <zmq.hpp>

#include "trading_heal/common/clock.hpp"
#include "trading_heal/diagnoser/cache.hpp"
#include "trading_heal/diagnoser/llm.hpp"
#include "trading_heal/diagnoser/pipeline.hpp"
#include "trading_heal/diagnoser/scheduler.hpp"

namespace trading_heal::diagnoser {

using JournalFn =
    std::function<tl::expected<std::vector<std::string>, std::string>(const std::string& unit)>;

struct Result {
  Job job;
  Outcome outcome;
  bool cache_hit = false;
  std::string journal_error;  // the diagnosis then rests on the probe's facts alone
  std::size_t lines = 0;
  double journal_seconds = 0;
};

// Thread-safe: the workers share one Analyst; the cache is behind a mutex.
class Analyst {
 public:
  // `llm` null: rules only (OLLAMA_ENABLED=false).
  // `rules` and `clock` are kept (read-only, shared by the workers: the clock must be safe to
  // read from several threads, as SystemClock is); they must outlive the Analyst. The clock times
  // the journal read and ages the cache.
  Analyst(JournalFn journal, LlmClient* llm, std::chrono::milliseconds cache_ttl,
          std::size_t max_answer_bytes, const common::Clock& clock,
          const RuleTable& rules = builtin_rules());
  Result run(const Job& job);
  std::uint64_t cache_hits() const;
  std::uint64_t cache_misses() const;

 private:
  JournalFn journal_;
  LlmClient* llm_;
  const RuleTable& rules_;
  const common::Clock& clock_;
  std::size_t max_answer_bytes_;
  mutable std::mutex mu_;
  DiagnosisCache cache_;
};

// N threads taking jobs from a queue; each finished Result is kept for take() and announced by
// an empty frame on a PUSH socket connected to `notify_endpoint` (inproc://), which the loop
// polls. The Scheduler bounds what is posted, so post() never waits for a worker.
class WorkerPool {
 public:
  WorkerPool(zmq::context_t& ctx, std::string notify_endpoint, Analyst& analyst,
             std::size_t workers);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;
  void post(Job job);
  std::vector<Result> take();
  // Wakes idle workers and joins all; jobs in flight must have been cancelled (LLM cancel flag).
  void stop();

 private:
  void work();
  zmq::context_t& ctx_;
  std::string endpoint_;
  Analyst& analyst_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  std::vector<Result> done_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace trading_heal::diagnoser
