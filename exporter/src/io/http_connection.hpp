// The inside of HttpServer (http_server.hpp): its state (Impl) and one connection's life
// (Connection). Everything a Connection does runs on the I/O thread but serve(), which runs on a
// worker and hands its answer back to the I/O thread.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core/error.hpp>

#include "trading_heal/common/clock.hpp"
#include "trading_heal/exporter/head_policy.hpp"
#include "trading_heal/exporter/http_server.hpp"

namespace trading_heal::exporter {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

class Connection;

struct HttpServer::Impl {
  Impl(ServerOptions o, HttpHandler h, HttpErrorBody e);
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  tl::expected<int, std::string> bind();
  void start();
  void stop();
  ServerStats stats() const;

  // I/O thread only.
  void accept();
  bool evict_oldest_waiting();
  void forget(Connection* c);

  // Any thread: the budget of answers held unwritten (kMaxHeldBytes). reserve_held waits for
  // room at most write_timeout; false: none came, or the server stops.
  bool reserve_held(std::size_t n);
  void release_held(std::size_t n);

  const ServerOptions opts;
  const common::Clock& clock;  // the heads' deadlines
  const HttpHandler handler;
  const HttpErrorBody error_body;

  // I/O thread only: every open connection, and those waiting for a head, oldest first.
  std::unordered_set<Connection*> conns;
  std::list<Connection*> waiting;

  asio::io_context io;
  tcp::acceptor acceptor;
  asio::steady_timer accept_pause;  // out of descriptors: accept again after a moment
  std::chrono::steady_clock::time_point limit_logged{};  // the limit's warning, every 10 s at most
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::optional<asio::thread_pool> pool;
  std::thread io_thread;
  std::atomic<bool> stopping{false};
  bool stopped = false;

  std::mutex held_mu;
  std::condition_variable held_cv;
  std::size_t held = 0;

  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> timed_out{0};
  std::atomic<std::uint64_t> evicted{0};
  std::atomic<std::size_t> open{0};
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using Impl = HttpServer::Impl;
  Connection(Impl& srv, tcp::socket sock);

  void start();      // waits for the first head
  void close_now();  // closes the socket at once (idempotent)

 private:
  struct Job {
    HttpRequest req;
    bool keep_alive = false;  // the client's wish (and no body to skip)
    std::size_t served = 0;   // answers before this one on the connection
  };

  void await_head(bool first);
  void read_more();
  void on_read(std::size_t n);
  void on_head_late();
  void arm_head();  // the timer at the head's next deadline
  void take_head(std::size_t head_len);
  void head_too_long();
  void serve(const Job& job);  // on a worker
  void stream(HttpAnswer& a);  // on a worker
  bool write_from_worker(std::string bytes);
  struct Outgoing {
    std::string head;
    std::string body;
  };
  void write(const std::shared_ptr<Outgoing>& out, std::size_t held, bool close);
  void answer_error(int status);
  void linger_close();
  void drain();
  void on_write_late();
  void arm(std::chrono::steady_clock::duration d, void (Connection::*on_expiry)());
  void unlist();

  Impl& srv_;
  tcp::socket sock_;
  asio::steady_timer timer_;
  std::uint64_t timer_gen_ = 0;  // a timer's expiry counts only if not armed again since
  std::string in_;               // bytes received and not yet taken as a head
  std::size_t scanned_ = 0;      // of in_, searched for the end of the head
  std::array<char, 4096> chunk_{};
  std::size_t served_ = 0;
  std::size_t drained_ = 0;
  bool idle_ = false;  // no byte of the awaited head yet
  HeadDeadlines deadlines_{};
  std::optional<std::list<Connection*>::iterator> listed_;
  bool closed_ = false;
};

}  // namespace trading_heal::exporter
