#include "trading_heal/diagnoser/analyst.hpp"

namespace trading_heal::diagnoser {

Analyst::Analyst(JournalFn journal, LlmClient* llm, std::chrono::milliseconds cache_ttl,
                 std::size_t max_answer_bytes, const common::Clock& clock, const RuleTable& rules)
    : journal_(std::move(journal)),
      llm_(llm),
      rules_(rules),
      clock_(clock),
      max_answer_bytes_(max_answer_bytes),
      cache_(cache_ttl) {}

Result Analyst::run(const Job& job) {
  Result r;
  r.job = job;
  const auto t0 = clock_.mono();
  std::vector<std::string> raw;
  if (auto lines = journal_(job.context.unit)) {
    raw = std::move(*lines);
  } else {
    r.journal_error = lines.error();
  }
  r.journal_seconds = std::chrono::duration<double>(clock_.mono() - t0).count();
  r.lines = raw.size();
  const Prepared p = prepare(job.context, raw, rules_);
  // An operator asking now wants a fresh look: only health-triggered jobs reuse the cache.
  if (llm_ != nullptr && job.origin == "health") {
    std::lock_guard lock(mu_);
    if (auto cached = cache_.get(p.fingerprint, clock_.mono())) {
      r.cache_hit = true;
      r.outcome.diagnosis = *cached;
      r.outcome.diagnosis.agent = job.context.agent;
      r.outcome.diagnosis.incident = job.incident;
      r.outcome.diagnosis.source = "cache";
      r.outcome.diagnosis.latency_seconds = 0;
      return r;
    }
  }
  if (llm_ == nullptr) {
    r.outcome = decide(p, nullptr, {}, job.incident, max_answer_bytes_);
    return r;
  }
  const LlmCall call = llm_->complete(p.prompt);
  r.outcome = decide(p, &call, call.model.empty() ? llm_->model() : call.model, job.incident,
                     max_answer_bytes_);
  if (!r.outcome.llm_error) {
    std::lock_guard lock(mu_);
    cache_.put(p.fingerprint, r.outcome.diagnosis, clock_.mono());
  }
  return r;
}

std::uint64_t Analyst::cache_hits() const {
  std::lock_guard lock(mu_);
  return cache_.hits();
}

std::uint64_t Analyst::cache_misses() const {
  std::lock_guard lock(mu_);
  return cache_.misses();
}

WorkerPool::WorkerPool(zmq::context_t& ctx, std::string notify_endpoint, Analyst& analyst,
                       std::size_t workers)
    : ctx_(ctx), endpoint_(std::move(notify_endpoint)), analyst_(analyst) {
  for (std::size_t i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
}

WorkerPool::~WorkerPool() { stop(); }

void WorkerPool::post(Job job) {
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

std::vector<Result> WorkerPool::take() {
  std::lock_guard lock(mu_);
  std::vector<Result> out;
  out.swap(done_);
  return out;
}

void WorkerPool::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void WorkerPool::work() {
  zmq::socket_t notify(ctx_, zmq::socket_type::push);
  notify.set(zmq::sockopt::linger, 0);
  notify.connect(endpoint_);
  while (true) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    Result r = analyst_.run(job);
    {
      std::lock_guard lock(mu_);
      done_.push_back(std::move(r));
    }
    try {
      (void)notify.send(zmq::message_t(), zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
      // The loop also drains results on its tick; a lost wake-up only delays them.
    }
  }
}

}  // namespace trading_heal::diagnoser
