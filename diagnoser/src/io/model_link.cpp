#include "trading_heal/diagnoser/model_link.hpp"

#include <spdlog/spdlog.h>

#include "trading_heal/common/zmq.hpp"

namespace trading_heal::diagnoser {
namespace {

using namespace std::chrono_literals;
constexpr std::size_t kMaxFrames = 8;
constexpr int kBatch = 100;

std::string next_wake_endpoint(const char* what) {
  static std::atomic<unsigned> n{0};
  return std::string("inproc://diagnoser-") + what + "-wake." + std::to_string(n++);
}

// Wakes the loop from a worker thread: one empty frame on the inproc wake-up endpoint. A lost
// wake-up only delays the work to the loop's next one.
void poke(zmq::context_t& ctx, const std::string& endpoint) {
  try {
    zmq::socket_t push(ctx, zmq::socket_type::push);
    push.set(zmq::sockopt::linger, 0);
    push.connect(endpoint);
    (void)push.send(zmq::message_t(), zmq::send_flags::dontwait);
  } catch (const zmq::error_t&) {
  }
}

void drain(zmq::socket_t& s) {
  for (int i = 0; i < 1000; ++i) {
    zmq::message_t m;
    try {
      if (!s.recv(m, zmq::recv_flags::dontwait)) return;
    } catch (const zmq::error_t&) {
      return;
    }
  }
}

tl::expected<zmq::socket_t, std::string> bind_wake(zmq::context_t& ctx,
                                                   const std::string& endpoint) {
  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  pull.set(zmq::sockopt::linger, 0);
  if (auto r = common::bind_endpoint(pull, endpoint); !r) return tl::unexpected(r.error());
  return pull;
}

double seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

// --- RemoteModel: a host's diagnoser asking the centre ------------------------------------------

RemoteModel::RemoteModel(std::string endpoint, std::chrono::milliseconds timeout,
                         const std::atomic<bool>& cancel, std::string model)
    : endpoint_(std::move(endpoint)),
      timeout_(timeout),
      cancel_(cancel),
      model_(std::move(model)),
      wake_endpoint_(next_wake_endpoint("remote")) {}

tl::expected<void, std::string> RemoteModel::open(
    zmq::context_t& ctx, const std::function<void(zmq::socket_t&)>& protect) {
  ctx_ = &ctx;
  auto wake = bind_wake(ctx, wake_endpoint_);
  if (!wake) return tl::unexpected(wake.error());
  wake_ = std::move(*wake);
  dealer_ = common::make_socket(ctx, zmq::socket_type::dealer);
  // A request the probe cannot take now (it is not there) is answered at once: no link.
  dealer_.set(zmq::sockopt::immediate, 1);
  try {
    protect(dealer_);
  } catch (const std::exception& e) {
    return tl::unexpected(std::string(e.what()));
  }
  if (auto r = common::connect_endpoint(dealer_, endpoint_); !r) {
    return tl::unexpected("cannot connect the model relay " + endpoint_ + ": " + r.error());
  }
  spdlog::info("the model is the centre's: asking through endpoint={} timeout_ms={}", endpoint_,
               timeout_.count());
  return {};
}

void RemoteModel::attach(common::Loop& loop) {
  loop.on_readable(wake_, [this] { on_wake(); });
  loop.on_readable(dealer_, [this] { on_reply(); });
}

LlmCall RemoteModel::complete(const Prompt& prompt) {
  const auto t0 = std::chrono::steady_clock::now();
  std::future<proto::ModelReply> answer;
  std::uint64_t id = 0;
  {
    std::lock_guard lock(mu_);
    id = next_id_++;
    answer = waiting_[id].get_future();
    outgoing_.emplace_back(id, proto::encode(proto::ModelRequest{
                                   .id = id,
                                   .system = prompt.system,
                                   .user = prompt.user,
                                   .timeout_ms = static_cast<std::uint32_t>(timeout_.count())}));
  }
  ++asked_;
  if (ctx_ != nullptr) poke(*ctx_, wake_endpoint_);
  LlmCall call;
  auto give_up = [&](const char* reason, std::string detail) {
    {
      std::lock_guard lock(mu_);
      waiting_.erase(id);
    }
    call.latency_seconds = seconds(std::chrono::steady_clock::now() - t0);
    call.content = tl::unexpected(LlmError{reason, std::move(detail)});
    return call;
  };
  while (answer.wait_for(100ms) != std::future_status::ready) {
    if (cancel_) return give_up("cancelled", "stopping");
    if (std::chrono::steady_clock::now() - t0 >= timeout_) {
      return give_up("timeout",
                     "no answer from the centre in " + std::to_string(timeout_.count()) + " ms");
    }
  }
  proto::ModelReply r = answer.get();
  call.latency_seconds = seconds(std::chrono::steady_clock::now() - t0);
  if (r.ok) {
    call.content = std::move(r.content);
    call.model = std::move(r.model);
  } else {
    call.content = tl::unexpected(LlmError{r.reason, r.detail});
  }
  return call;
}

void RemoteModel::on_wake() {
  drain(wake_);
  std::deque<std::pair<std::uint64_t, std::string>> out;
  {
    std::lock_guard lock(mu_);
    out.swap(outgoing_);
  }
  for (auto& [id, body] : out) {
    std::vector<zmq::message_t> frames;
    frames.emplace_back();
    frames.emplace_back(body);
    if (common::send_frames(dealer_, frames)) continue;
    answer(id, proto::model_failure(id, "unreachable",
                                    "no link to the probe's model relay " + endpoint_));
  }
}

void RemoteModel::on_reply() {
  for (int i = 0; i < kBatch; ++i) {
    auto frames = common::recv_frames(dealer_, kMaxFrames);
    if (frames.empty()) return;
    if (frames.size() != 2 || frames[0].size() != 0) continue;  // not ["", reply]
    auto r = proto::decode_model_reply(frames[1].to_string());
    if (!r) {
      spdlog::warn("model relay: a reply that is not one bytes={}", frames[1].size());
      continue;
    }
    answer(r->id, std::move(*r));
  }
}

void RemoteModel::answer(std::uint64_t id, proto::ModelReply reply) {
  std::lock_guard lock(mu_);
  auto it = waiting_.find(id);
  if (it == waiting_.end()) {
    ++late_;
    return;
  }
  it->second.set_value(std::move(reply));
  waiting_.erase(it);
}

// --- ModelServer: the centre's diagnoser answering the hosts ------------------------------------

ModelServer::ModelServer(LlmClient& llm, std::size_t workers, std::size_t max_queued,
                         const common::Clock& clock)
    : llm_(llm),
      workers_(std::max<std::size_t>(1, workers)),
      max_queued_(std::max<std::size_t>(1, max_queued)),
      clock_(clock),
      wake_endpoint_(next_wake_endpoint("model")) {}

ModelServer::~ModelServer() { stop(); }

tl::expected<void, std::string> ModelServer::open(
    zmq::context_t& ctx, const std::string& endpoint,
    const std::function<void(zmq::socket_t&)>& protect) {
  ctx_ = &ctx;
  auto wake = bind_wake(ctx, wake_endpoint_);
  if (!wake) return tl::unexpected(wake.error());
  wake_ = std::move(*wake);
  router_ = common::make_socket(ctx, zmq::socket_type::router);
  try {
    protect(router_);
  } catch (const std::exception& e) {
    return tl::unexpected(std::string(e.what()));
  }
  if (auto r = common::bind_endpoint(router_, endpoint); !r) {
    return tl::unexpected("cannot bind the model endpoint " + endpoint + ": " + r.error());
  }
  for (std::size_t i = 0; i < workers_; ++i) threads_.emplace_back([this] { work(); });
  spdlog::info("answering the hosts' model requests endpoint={} workers={} queue={} model={}",
               endpoint, workers_, max_queued_, llm_.model());
  return {};
}

void ModelServer::attach(common::Loop& loop) {
  loop.on_readable(router_, [this] { on_request(); });
  loop.on_readable(wake_, [this] { on_done(); });
}

void ModelServer::stop() {
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

void ModelServer::on_request() {
  for (int i = 0; i < kBatch; ++i) {
    auto frames = common::recv_frames(router_, kMaxFrames);
    if (frames.empty()) return;
    // [exporter, envelope..., "", host, body]: the exporter's relay tags every request.
    const std::size_t d = common::delimiter_of(frames);
    std::optional<proto::ModelRequest> req;
    if (frames.size() <= kMaxFrames && d != 0 && d + 3 == frames.size()) {
      req = proto::decode_model_request(frames[d + 2].to_string());
    }
    if (!req) {
      ++dropped_;
      continue;
    }
    Work w;
    w.host = frames[d + 1].to_string();
    w.request = std::move(*req);
    w.queued_at = clock_.mono();
    frames.resize(d + 1);
    w.envelope = std::move(frames);
    const std::string host = w.host;
    std::unique_lock lock(mu_);
    const std::size_t free = in_flight_ >= max_queued_ ? 0 : max_queued_ - in_flight_;
    auto turned = queue_.push(host, std::move(w), free);
    lock.unlock();
    if (!turned) {
      cv_.notify_one();
      continue;
    }
    // Refused (this host holds as many as any other), or another host's newest gave way to it.
    const bool evicted = turned->host != host;
    std::string detail = "the centre's model queue is full (" + std::to_string(max_queued_) + ")";
    if (evicted) {
      spdlog::info("model queue full: host={} id={} gave its place to host={}", turned->host,
                   turned->item.request.id, host);
      detail += ": its place went to a host with fewer requests queued";
    }
    ++busy_;
    turned->item.reply = proto::model_failure(turned->item.request.id, "busy", detail);
    reply(turned->item);
  }
}

void ModelServer::work() {
  while (true) {
    Work w;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      w = std::move(queue_.pop()->item);
      ++in_flight_;
    }
    w.reply.id = w.request.id;
    const auto waited = clock_.mono() - w.queued_at;
    if (w.request.timeout_ms != 0 && waited >= std::chrono::milliseconds(w.request.timeout_ms)) {
      // Its asker has given up already: the model is not asked for nobody.
      w.reply.reason = "timeout";
      w.reply.detail = "waited in the centre's queue past the asker's timeout";
    } else {
      const LlmCall call = llm_.complete(Prompt{w.request.system, w.request.user});
      w.reply.latency_seconds = call.latency_seconds;
      if (call.content) {
        w.reply.ok = true;
        w.reply.content = *call.content;
        w.reply.model = call.model.empty() ? llm_.model() : call.model;
      } else {
        w.reply.reason = call.content.error().reason;
        w.reply.detail = "the centre: " + call.content.error().detail;
      }
    }
    {
      std::lock_guard lock(mu_);
      --in_flight_;
      done_.push_back(std::move(w));
    }
    if (ctx_ != nullptr) poke(*ctx_, wake_endpoint_);
  }
}

void ModelServer::on_done() {
  drain(wake_);
  std::deque<Work> done;
  {
    std::lock_guard lock(mu_);
    done.swap(done_);
  }
  for (auto& w : done) {
    if (w.reply.ok) {
      ++served_;
    } else {
      ++failed_;
    }
    spdlog::info("model request host={} id={} result={} latency_ms={} detail=\"{}\"", w.host,
                 w.request.id, w.reply.ok ? "ok" : w.reply.reason,
                 static_cast<long>(w.reply.latency_seconds * 1000), w.reply.detail);
    reply(w);
  }
}

void ModelServer::reply(Work& w) {
  std::vector<zmq::message_t> frames = std::move(w.envelope);
  frames.emplace_back(proto::encode(w.reply));
  (void)common::send_frames(router_, frames);  // an asker gone: the ROUTER drops it
}

}  // namespace trading_heal::diagnoser
