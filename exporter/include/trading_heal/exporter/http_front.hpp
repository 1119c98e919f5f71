// The connection side of the exporter's two HTTP servers (:9120 metrics, :9121 API): a small
// accept front of our own in front of cpp-httplib's request handling.
//
// Why. cpp-httplib 0.11 gives each accepted connection a pool thread that reads the request
// head with a timeout per recv(): a client trickling one byte every few seconds holds its thread
// without bound, and more such clients than threads stop /health and /metrics (slowloris).
// Hooks that only learn the fd (socket options, a TaskQueue) cannot free the thread a trickler
// holds early enough to keep the queue short. So the front owns the sockets until a request
// head is complete:
//
//   - one thread (epoll) accepts and reads the heads of every connection, non-blocking;
//   - a connection must deliver a complete head ("\r\n\r\n") within `header_timeout` of being
//     accepted (or of its previous answer), and a kept-alive connection must start its next
//     request within `idle_timeout`; otherwise it is sent 408 (bytes were received) or just
//     closed (idle);
//   - a head is at most kMaxHead bytes; a longer one is handed on cut there, answered by
//     httplib (414 for a long request line, 400 otherwise) and the connection closed;
//   - before closing a connection whose client may still be sending (after a 408, a cut head,
//     any answer that ends the connection), the front shuts its side down and reads and drops
//     input until the client closes, for up to 1 s (1 MiB): closing with unread input sends a
//     reset, which can destroy the answer in flight;
//   - at most `max_connections` connections are held; when a new one comes at the limit, the
//     connection that has waited longest for its head is closed (memory: kMaxHead each);
//   - only a complete head goes to a worker: the worker runs httplib's Server::process_request
//     on a stream that reads that head and writes to the socket, so workers never wait for a
//     client to send. A long answer (the SSE /audit/stream) keeps its worker as long as it runs;
//   - nor for a client to read: when the socket is full, the rest of the answer is kept with
//     the connection (up to 16 MiB each, 64 MiB in all) and the front sends it as the client
//     reads, closing the connection if that takes longer than `write_timeout`. Past those
//     budgets, or for the next write of a stream, the worker waits, each write bounded by
//     `write_timeout` in total;
//   - after the answer, a kept-alive connection goes back to the front for its next request.
//
// Requests are never given a body: every route is GET/HEAD, and other methods are answered by
// the pre-routing handler (405) before httplib would read one.
//
// Thread-safety: routes() is configured before start(); bind()/start()/stop() from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <tl/expected.hpp>

namespace httplib {
class Server;
}

namespace trading_heal::exporter {

struct FrontOptions {
  std::string listen;  // HOST:PORT ([v6]:PORT), port 0 picks a free one
  std::size_t threads = 2;
  std::size_t max_connections = 256;
  std::chrono::milliseconds header_timeout{5000};
  std::chrono::milliseconds idle_timeout{5000};
  std::size_t keep_alive_max = 5;  // requests per connection
  std::chrono::milliseconds write_timeout{10000};
  int backlog = 128;
};

struct FrontStats {
  std::uint64_t accepted = 0;
  std::uint64_t requests = 0;
  std::uint64_t timed_out = 0;  // closed for a late head or an idle keep-alive
  std::uint64_t evicted = 0;    // closed at the connection limit
  std::size_t open = 0;         // connections held now
};

class HttpFront {
 public:
  static constexpr std::size_t kMaxHead = 16 * 1024;

  explicit HttpFront(FrontOptions opts);
  ~HttpFront();
  HttpFront(const HttpFront&) = delete;
  HttpFront& operator=(const HttpFront&) = delete;

  // Routes, handlers and error handlers (not the post-routing handler: the front uses it).
  httplib::Server& routes();
  tl::expected<int, std::string> bind();  // the bound port
  void start();                           // the front thread and the workers
  void stop();                            // closes every connection, joins
  FrontStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace trading_heal::exporter
