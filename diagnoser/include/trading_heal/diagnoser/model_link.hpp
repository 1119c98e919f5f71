// Many hosts, the model in the centre (proto/model_call.hpp):
// - RemoteModel, a host's LLM client: the prompt (built from the host's own journal, already
//   redacted) goes to the probe's model relay and on to the centre; the answer comes back to be
//   validated here like any model's. No link, a refusal or no answer in time is an LLM error,
//   and the rules decide (pipeline.hpp), as with a model that is down.
// - ModelServer, the centre's diagnoser's side: answers the hosts' requests (passed on by the
//   centre's exporter, tagged with their host) with its own LLM client, on a few worker threads,
//   a bounded queue (a full one answers `busy`) shared fairly among the hosts (fair_queue.hpp:
//   served in turn; one host's burst cannot take every place).
// Both own their sockets on the diagnoser's loop thread; the model calls block worker threads
// only.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <tl/expected.hpp>
#include <zmq.hpp>

#include "trading_heal/common/clock.hpp"
#include "trading_heal/common/loop.hpp"
#include "trading_heal/diagnoser/fair_queue.hpp"
#include "trading_heal/diagnoser/llm.hpp"
#include "trading_heal/proto/model_call.hpp"

namespace trading_heal::diagnoser {

class RemoteModel final : public LlmClient {
 public:
  // `timeout`: how long a call waits for the centre's answer; `cancel` ends every wait.
  RemoteModel(std::string endpoint, std::chrono::milliseconds timeout,
              const std::atomic<bool>& cancel, std::string model);
  // Loop side: the DEALER (given to `protect` before it connects) and the wake-up socket.
  tl::expected<void, std::string> open(zmq::context_t& ctx,
                                       const std::function<void(zmq::socket_t&)>& protect);
  void attach(common::Loop& loop);
  zmq::socket_t& socket() { return dealer_; }

  // Worker side: blocks until the answer, the timeout or the cancel.
  LlmCall complete(const Prompt& prompt) override;
  const std::string& model() const override { return model_; }

  std::uint64_t asked() const { return asked_; }
  std::uint64_t late() const { return late_; }  // answers that came after their asker gave up

 private:
  void on_wake();
  void on_reply();
  void answer(std::uint64_t id, proto::ModelReply reply);

  std::string endpoint_;
  std::chrono::milliseconds timeout_;
  const std::atomic<bool>& cancel_;
  std::string model_;
  zmq::context_t* ctx_ = nullptr;
  std::string wake_endpoint_;
  zmq::socket_t dealer_;
  zmq::socket_t wake_;
  std::mutex mu_;
  std::deque<std::pair<std::uint64_t, std::string>> outgoing_;  // encoded, for the loop to send
  std::map<std::uint64_t, std::promise<proto::ModelReply>> waiting_;
  std::uint64_t next_id_ = 1;
  std::atomic<std::uint64_t> asked_{0}, late_{0};
};

class ModelServer {
 public:
  ModelServer(LlmClient& llm, std::size_t workers, std::size_t max_queued,
              const common::Clock& clock);
  ~ModelServer();
  ModelServer(const ModelServer&) = delete;
  ModelServer& operator=(const ModelServer&) = delete;
  // Binds `endpoint` (the ROUTER given to `protect` first) and starts the workers.
  tl::expected<void, std::string> open(zmq::context_t& ctx, const std::string& endpoint,
                                       const std::function<void(zmq::socket_t&)>& protect);
  void attach(common::Loop& loop);
  // Ends the workers (a model call in flight ends with the LLM client's cancel).
  void stop();

  std::uint64_t served() const { return served_; }
  std::uint64_t failed() const { return failed_; }
  std::uint64_t busy() const { return busy_; }
  std::uint64_t dropped() const { return dropped_; }

 private:
  struct Work {
    std::vector<zmq::message_t> envelope;  // up to and with the delimiter
    std::string host;
    proto::ModelRequest request;
    proto::ModelReply reply;
    common::MonoTime queued_at{};
  };
  void on_request();
  void on_done();
  void work();
  void reply(Work& w);

  LlmClient& llm_;
  std::size_t workers_;
  std::size_t max_queued_;
  const common::Clock& clock_;
  zmq::context_t* ctx_ = nullptr;
  std::string wake_endpoint_;
  zmq::socket_t router_;
  zmq::socket_t wake_;
  std::mutex mu_;
  std::condition_variable cv_;
  FairQueue<Work> queue_;  // round robin over the hosts; a full queue shared among them
  std::deque<Work> done_;
  std::size_t in_flight_ = 0;  // taken by a worker, not yet done
  bool stopping_ = false;
  std::vector<std::thread> threads_;
  std::uint64_t served_ = 0, failed_ = 0, busy_ = 0, dropped_ = 0;
};

}  // namespace trading_heal::diagnoser
