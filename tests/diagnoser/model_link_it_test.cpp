// The model in the centre, in one process: a host's RemoteModel -> the probe's RequestRelay ->
// the centre exporter's (tagging) RequestRelay -> the centre diagnoser's ModelServer with a fake
// LLM, over ipc, on one loop thread (as the daemons run them; the peer guard is tested on its
// own). Shown: the answer and the model's name come back; a model error passes through as one;
// a hop without a link answers `unreachable` at once; a full queue answers `busy`, and is shared
// among the hosts; a slow model is given up at the asker's timeout and its late answer is counted,
// not delivered; a message that is not a request is dropped and the path keeps working.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/temp_dir.hpp"
#include "support/wait.hpp"
#include "trading_heal/common/loop.hpp"
#include "trading_heal/common/request_relay.hpp"
#include "trading_heal/common/zmq.hpp"
#include "trading_heal/diagnoser/model_link.hpp"

namespace trading_heal::diagnoser {
namespace {

using namespace std::chrono_literals;
using common::RequestRelay;

// Answers every prompt with its user text, or fails, or waits until released.
class FakeLlm final : public LlmClient {
 public:
  LlmCall complete(const Prompt& prompt) override {
    std::unique_lock lock(mu_);
    ++calls_;
    last_ = prompt;
    users_.push_back(prompt.user);
    cv_.wait(lock, [this] { return !hold_; });
    if (!fail_.empty()) return {tl::unexpected(LlmError{fail_, "status 500"}), 0.25, {}};
    return {"answer to " + prompt.user, 0.5, "fake:1b"};
  }
  const std::string& model() const override { return model_; }
  void hold(bool h) {
    {
      std::lock_guard lock(mu_);
      hold_ = h;
    }
    cv_.notify_all();
  }
  void fail(std::string reason) {
    std::lock_guard lock(mu_);
    fail_ = std::move(reason);
  }
  int calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }
  Prompt last() {
    std::lock_guard lock(mu_);
    return last_;
  }
  // The user texts asked, in order, from the `from`th call on.
  std::vector<std::string> users(int from) {
    std::lock_guard lock(mu_);
    return {users_.begin() + from, users_.end()};
  }

 private:
  std::string model_ = "configured";
  std::mutex mu_;
  std::condition_variable cv_;
  bool hold_ = false;
  std::string fail_;
  int calls_ = 0;
  Prompt last_;
  std::vector<std::string> users_;
};

class ModelPath : public ::testing::Test {
 protected:
  // The whole path; without `centre` the exporter's relay has no diagnoser behind it.
  void start(bool centre, std::chrono::milliseconds timeout = 5s, std::size_t queue = 8) {
    const std::string d = "ipc://" + dir_.str();
    host_ep_ = d + "/probe-model.sock";
    const std::string analysis = d + "/analysis.sock", model = d + "/diagnoser-model.sock";
    std::promise<void> ready;
    loop_thread_ = std::thread([&, centre, timeout, queue] {
      common::SignalFd signals({SIGTERM, SIGINT});
      common::Loop loop(signals);
      auto none = [](zmq::socket_t&) {};
      std::unique_ptr<ModelServer> server;
      if (centre) {
        server = std::make_unique<ModelServer>(llm_, 1, queue, clock_);
        ASSERT_TRUE(server->open(ctx_, model, none));
        server->attach(loop);
      }
      RequestRelay centre_relay(ctx_, {.name = "analysis relay",
                                       .front = analysis,
                                       .back = model,
                                       .tag_host = true,
                                       .local_host = "centre"});
      RequestRelay probe_relay(
          ctx_,
          {.name = "model relay", .front = host_ep_, .back = analysis, .local_host = "alpha"});
      remote_ = std::make_unique<RemoteModel>(host_ep_, timeout, cancel_, "host-setting");
      ASSERT_TRUE(remote_->open(ctx_, none));
      remote_->attach(loop);
      centre_relay.attach(loop);
      probe_relay.attach(loop);
      relays_[0] = &probe_relay;
      relays_[1] = &centre_relay;
      server_ = server.get();
      loop.on_tick(std::chrono::steady_clock::now(), [&](common::MonoTime now) {
        if (stop_) loop.stop();
        return now + 20ms;
      });
      ready.set_value();
      loop.run();
      if (server) server->stop();
      remote_.reset();
    });
    ready.get_future().wait();
  }
  void TearDown() override {
    llm_.hold(false);
    stop_ = true;
    cancel_ = true;
    if (loop_thread_.joinable()) loop_thread_.join();
  }
  LlmCall ask(const std::string& user) { return remote_->complete(Prompt{"sys", user}); }
  // The ipc links come up a moment after the sockets connect; until then a hop answers
  // `unreachable` (as it would for a host whose link is down).
  void await_links() {
    ASSERT_TRUE(test::wait_until(
        [&] {
          const LlmCall c = ask("ping");
          return c.content.has_value() || c.content.error().reason != "unreachable";
        },
        5s, 20ms));
    warm_calls_ = llm_.calls();
  }
  int warm_calls_ = 0;

  test::TempDir dir_{"th-model"};
  zmq::context_t ctx_;
  common::SystemClock clock_;
  FakeLlm llm_;
  std::atomic<bool> cancel_{false}, stop_{false};
  std::unique_ptr<RemoteModel> remote_;
  RequestRelay* relays_[2] = {nullptr, nullptr};
  ModelServer* server_ = nullptr;
  std::string host_ep_;
  std::thread loop_thread_;
};

TEST_F(ModelPath, TheCentresAnswerComesBackWithItsModel) {
  start(true);
  await_links();
  const LlmCall call = ask("why did BTC_USDT stall");
  ASSERT_TRUE(call.content.has_value()) << call.content.error().reason;
  EXPECT_EQ(*call.content, "answer to why did BTC_USDT stall");
  EXPECT_EQ(call.model, "fake:1b");
  EXPECT_EQ(llm_.last().system, "sys");
  EXPECT_EQ(llm_.last().user, "why did BTC_USDT stall");
  EXPECT_EQ(llm_.calls(), warm_calls_ + 1);
}

TEST_F(ModelPath, AModelErrorPassesThroughAsOne) {
  start(true);
  await_links();
  llm_.fail("http_500");
  const LlmCall call = ask("x");
  ASSERT_FALSE(call.content.has_value());
  EXPECT_EQ(call.content.error().reason, "http_500");
  EXPECT_EQ(call.content.error().detail, "the centre: status 500") << "said where it failed, once";
}

TEST_F(ModelPath, AHopWithoutALinkAnswersUnreachableAtOnce) {
  start(false, 10s);
  auto said = [&](const LlmCall& c, const char* hop) {
    return !c.content.has_value() && c.content.error().reason == "unreachable" &&
           c.content.error().detail.find(hop) != std::string::npos;
  };
  // The host's own link first (before its ipc connection is up), then the exporter's hop, which
  // has no diagnoser behind it.
  ASSERT_TRUE(test::wait_until([&] { return said(ask("x"), "analysis relay"); }, 5s, 20ms));
  const auto before = relays_[1]->unreachable();
  const auto t0 = std::chrono::steady_clock::now();
  const LlmCall call = ask("x");
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_TRUE(said(call, "analysis relay: no link to ipc://")) << call.content.error().detail;
  EXPECT_LT(took, 5s) << "waited for its timeout instead";
  EXPECT_EQ(relays_[1]->unreachable(), before + 1);
}

TEST_F(ModelPath, AFullQueueAnswersBusy) {
  start(true, 5s, 1);
  await_links();
  llm_.hold(true);
  auto first = std::async(std::launch::async, [&] { return ask("first"); });
  ASSERT_TRUE(test::wait_until([&] { return llm_.calls() == warm_calls_ + 1; }, 5s, 10ms));
  const LlmCall second = ask("second");
  ASSERT_FALSE(second.content.has_value());
  EXPECT_EQ(second.content.error().reason, "busy");
  llm_.hold(false);
  const LlmCall one = first.get();
  ASSERT_TRUE(one.content.has_value()) << one.content.error().reason;
  EXPECT_EQ(*one.content, "answer to first");
}

// Two hosts at the centre's ModelServer (their relays' tagging stood in for by DEALERs that name
// their host): alpha's burst fills the queue; beta's one request still gets a place, alpha's
// newest giving it up (`busy` at once), and is served in turn, not behind all of alpha's.
TEST_F(ModelPath, AFullQueueIsSharedAmongTheHosts) {
  start(true, 5s, 4);
  await_links();
  const std::string model_ep = "ipc://" + dir_.str() + "/diagnoser-model.sock";
  auto asker = [&](const std::string& host) {
    zmq::socket_t s = common::make_socket(ctx_, zmq::socket_type::dealer);
    s.connect(model_ep);
    return std::make_pair(host, std::move(s));
  };
  auto alpha = asker("alpha");
  auto beta = asker("beta");
  auto send = [](std::pair<std::string, zmq::socket_t>& a, std::uint64_t id) {
    proto::ModelRequest r{id, "sys", a.first + "-" + std::to_string(id), 5000};
    std::vector<zmq::message_t> frames;
    frames.emplace_back();
    frames.emplace_back(a.first);
    frames.emplace_back(proto::encode(r));
    ASSERT_TRUE(common::send_frames(a.second, frames));
  };
  auto receive = [](std::pair<std::string, zmq::socket_t>& a) {
    zmq::pollitem_t item{a.second.handle(), 0, ZMQ_POLLIN, 0};
    EXPECT_EQ(zmq::poll(&item, 1, std::chrono::milliseconds(5000)), 1) << a.first << ": no reply";
    auto frames = common::recv_frames(a.second, 4);
    EXPECT_EQ(frames.size(), 2U) << a.first;
    if (frames.size() != 2) return proto::ModelReply{};
    return proto::decode_model_reply(frames[1].to_string()).value_or(proto::ModelReply{});
  };
  llm_.hold(true);
  // alpha: one in flight, three queued (4 places), its fifth refused.
  send(alpha, 1);
  ASSERT_TRUE(test::wait_until([&] { return llm_.calls() == warm_calls_ + 1; }, 5s, 10ms));
  for (std::uint64_t id = 2; id <= 5; ++id) send(alpha, id);
  const proto::ModelReply fifth = receive(alpha);
  EXPECT_EQ(fifth.id, 5U);
  EXPECT_EQ(fifth.reason, "busy");
  // beta's one: alpha's newest queued (4) gives way.
  send(beta, 1);
  const proto::ModelReply gave_way = receive(alpha);
  EXPECT_EQ(gave_way.id, 4U);
  EXPECT_EQ(gave_way.reason, "busy");
  EXPECT_NE(gave_way.detail.find("went to a host with fewer"), std::string::npos)
      << gave_way.detail;
  llm_.hold(false);
  for (int i = 0; i < 3; ++i) {
    const proto::ModelReply r = receive(alpha);
    EXPECT_TRUE(r.ok) << r.id << " " << r.reason << " " << r.detail;
  }
  const proto::ModelReply b = receive(beta);
  EXPECT_TRUE(b.ok) << b.reason;
  EXPECT_EQ(b.content, "answer to beta-1");
  // Served in turn: alpha's first (in flight when beta asked), alpha's second, beta's, alpha's
  // third; not beta's behind all of alpha's.
  EXPECT_EQ(llm_.users(warm_calls_),
            (std::vector<std::string>{"alpha-1", "alpha-2", "beta-1", "alpha-3"}));
  EXPECT_EQ(server_->busy(), 2U);
}

TEST_F(ModelPath, ASlowModelIsGivenUpAtTheTimeoutAndItsLateAnswerCounted) {
  start(true, 400ms);
  await_links();
  llm_.hold(true);
  const LlmCall call = ask("slow");
  ASSERT_FALSE(call.content.has_value());
  EXPECT_EQ(call.content.error().reason, "timeout");
  EXPECT_GE(call.latency_seconds, 0.4);
  llm_.hold(false);
  EXPECT_TRUE(test::wait_until([&] { return remote_->late() == 1; }, 5s, 10ms));
}

TEST_F(ModelPath, WhatIsNotARequestIsDroppedAndThePathKeepsWorking) {
  start(true);
  await_links();
  zmq::socket_t stranger(ctx_, zmq::socket_type::dealer);
  stranger.set(zmq::sockopt::linger, 0);
  stranger.connect(host_ep_);
  ASSERT_TRUE(stranger.send(zmq::str_buffer("no delimiter"), zmq::send_flags::none));
  ASSERT_TRUE(test::wait_until([&] { return relays_[0]->dropped() == 1; }, 5s, 10ms));
  // A well-formed envelope with a body that is not a request reaches the centre's diagnoser,
  // which drops it.
  ASSERT_TRUE(stranger.send(zmq::message_t(), zmq::send_flags::sndmore));
  ASSERT_TRUE(
      stranger.send(zmq::str_buffer("{\"kind\":\"model_request\"}"), zmq::send_flags::none));
  ASSERT_TRUE(test::wait_until([&] { return server_->dropped() == 1; }, 5s, 10ms));
  const LlmCall call = ask("still there");
  ASSERT_TRUE(call.content.has_value()) << call.content.error().reason;
  EXPECT_EQ(*call.content, "answer to still there");
}

}  // namespace
}  // namespace trading_heal::diagnoser
