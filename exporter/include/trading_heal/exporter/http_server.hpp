// The exporter's HTTP server (:9120 metrics, :9121 API): Boost.Asio owns the sockets and the
// deadlines, Boost.Beast parses the request heads; a handler of the caller's answers each
// complete request on a worker thread.
//
// Hostile clients, and what each costs:
//   - one I/O thread reads every connection's head, non-blocking; a head must be complete within
//     `header_timeout` of the connection's accept (or of its previous answer): an absolute
//     deadline, which a client trickling a byte at a time does not move. A kept-alive connection
//     must start its next request within `idle_timeout`. Late: 408 when bytes had come, else
//     closed (head_policy.hpp, on the options' Clock);
//   - a head is at most kMaxHead bytes, a request target at most kMaxTarget (414; a longer head
//     is 431), a head Beast cannot parse is 400; these answers close the connection;
//   - at most `max_connections` are held; at the limit, the connection that has waited longest
//     for its head is closed for the new one (none waiting: the new one is closed);
//   - only a complete head reaches a worker, so workers never wait for a client to send, nor to
//     read: the I/O thread writes the answer as the client takes it, within `write_timeout` of
//     the start of the write, or closes the connection. Answers held unwritten are at most
//     kMaxHeldBytes in all; past that a worker waits (at most `write_timeout`) before handing
//     on another. A stream (Server-Sent Events) keeps its worker while it runs; each chunk's
//     write is bounded by `write_timeout`;
//   - before closing a connection whose client may still be sending, its side is shut down and
//     input is read and dropped until the client closes, for up to 1 s (1 MiB): closing with
//     unread input sends a reset, which can destroy the answer in flight.
//
// Requests are never given a body: a request announcing one is answered (the handler decides,
// the API answers 405 to every method but GET and HEAD) and its connection closed.
//
// Thread-safety: the handler runs on worker threads, concurrently. bind()/start()/stop() from
// one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <tl/expected.hpp>

#include "trading_heal/common/clock.hpp"
#include "trading_heal/exporter/audit_query.hpp"

namespace trading_heal::exporter {

class Connection;

struct HttpRequest {
  std::string method;  // as sent: GET, HEAD, ...
  std::string path;    // percent-decoded, without the query
  QueryParams params;  // the query's pairs, decoded ('+' is a space)
  std::vector<std::pair<std::string, std::string>> headers;

  // The first value of a header (case-insensitive name); empty when absent.
  std::string header(std::string_view name) const;
};

struct HttpAnswer {
  int status = 200;
  std::string content_type;
  std::string body;  // not sent for HEAD (its length is)
  std::vector<std::pair<std::string, std::string>> headers;
  bool close = false;  // end the connection after this answer
  // A stream instead of a body (chunked): `next` is called on the worker again and again and
  // appends the next chunk to its argument (it may block, e.g. waiting for events); false ends
  // the stream. `done` runs once when the stream ends, however it ends.
  std::function<bool(std::string&)> next;
  std::function<void()> done;
};

using HttpHandler = std::function<void(const HttpRequest&, HttpAnswer&)>;
// Fills the body of an answer the server makes itself (its status set: 400, 408, 414, 431,
// 500 for a handler's exception, 503 while stopping).
using HttpErrorBody = std::function<void(HttpAnswer&)>;

struct ServerOptions {
  std::string listen;  // HOST:PORT ([v6]:PORT), port 0 picks a free one
  std::size_t threads = 2;
  std::size_t max_connections = 256;
  std::chrono::milliseconds header_timeout{5000};
  std::chrono::milliseconds idle_timeout{5000};
  std::size_t keep_alive_max = 5;  // requests per connection
  std::chrono::milliseconds write_timeout{10000};
  int backlog = 128;
  const common::Clock* clock =
      nullptr;  // the heads' deadlines (head_policy.hpp); null: the process's
};

struct ServerStats {
  std::uint64_t accepted = 0;
  std::uint64_t requests = 0;
  std::uint64_t timed_out = 0;  // closed for a late head, an idle keep-alive or a slow reader
  std::uint64_t evicted = 0;    // closed at the connection limit
  std::size_t open = 0;         // connections held now
};

class HttpServer {
 public:
  static constexpr std::size_t kMaxHead = std::size_t{16} * 1024;
  static constexpr std::size_t kMaxTarget = std::size_t{8} * 1024;
  static constexpr std::size_t kMaxHeldBytes = 64u << 20;

  HttpServer(ServerOptions opts, HttpHandler handler, HttpErrorBody error_body = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  tl::expected<int, std::string> bind();  // the bound port
  void start();                           // the I/O thread and the workers
  void stop();                            // closes every connection, ends streams, joins
  ServerStats stats() const;

 private:
  friend class Connection;  // a connection's life (src/io/http_connection.hpp)
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The query string's pairs, percent-decoded, '+' as a space; pieces without '=' have "".
QueryParams parse_query(std::string_view query);
// Percent-decoding; `plus_is_space` for query strings. A bad escape is kept as it is.
std::string percent_decode(std::string_view s, bool plus_is_space);

}  // namespace trading_heal::exporter
