// The status and audit API on TRADING_HEAL_API_LISTEN (HttpServer, http_server.hpp), served by its
// own thread pool, never by the loop thread.
//
//   GET /health        200 {"status":"ok"} / 503 {"status":"degraded","silent":[...]}
//   GET /status        per-agent current state (bearer token when configured)
//   GET /audit         JSON array, oldest first; symbol action agent since until limit
//   GET /audit/stream  Server-Sent Events of new audit lines (same filters minus the window)
// Any other method: 405 (Allow: GET); unknown path: 404; bad parameter: 400 naming it; URI over
// 8 KiB: 414; a head over 16 KiB: 431; the answers are JSON.
//
// Hostile clients: connections are accepted and their request heads read by the HttpServer: a head
// must be complete within `header_timeout` of the connection (or of its previous answer), an idle
// kept-alive connection is closed after `idle_timeout`, at most `max_connections` are held (the one
// waiting longest for its head is closed for a new one), and the pool threads only ever run
// complete requests — trickling clients hold no thread.
//
// Thread-safety: the backend callbacks run on pool threads, concurrently; they must be
// thread-safe (the daemon guards its state with a mutex). start()/stop() from one thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <tl/expected.hpp>

#include "trading_heal/exporter/audit_query.hpp"
#include "trading_heal/exporter/stream_hub.hpp"

namespace trading_heal::exporter {

class HttpServer;
struct HttpRequest;
struct HttpAnswer;

struct ApiOptions {
  std::string listen = "127.0.0.1:9121";  // HOST:PORT, port 0 picks a free one
  std::string token;                      // empty: /status and /audit need no token
  // Names the token-protected paths answer to in the Host header, besides IP literals and
  // localhost (TRADING_HEAL_API_HOSTS): a page in a browser on this host that renamed its own
  // site to 127.0.0.1 (DNS rebinding) sends its own name and gets 421.
  std::vector<std::string> hosts;
  std::size_t threads = 32;
  std::size_t max_connections = 1024;
  std::chrono::milliseconds header_timeout{5000};
  std::chrono::milliseconds idle_timeout{2000};
  std::chrono::milliseconds stream_keepalive{15000};
};

struct ApiBackend {
  std::function<std::string(int* status)> health;
  std::function<std::string()> status;
  // `stopped_after`: set to the lines read when the scan stopped at its bound (else 0).
  std::function<std::string(const AuditQuery&, std::uint64_t* stopped_after)> audit;
};

class HttpApi {
 public:
  HttpApi(ApiOptions opts, ApiBackend backend, StreamHub& hub);
  ~HttpApi();
  HttpApi(const HttpApi&) = delete;
  HttpApi& operator=(const HttpApi&) = delete;

  // Binds the listening socket; returns the port (useful with port 0).
  tl::expected<int, std::string> bind();
  void start();  // serves on its own threads
  void stop();   // stops accepting, ends streams, joins

 private:
  void serve(const HttpRequest& req, HttpAnswer& res);
  // The Host check and the bearer token; false: `res` holds the refusal.
  bool authorize(const HttpRequest& req, HttpAnswer& res) const;
  void serve_audit(const HttpRequest& req, HttpAnswer& res);
  void serve_stream(const HttpRequest& req, HttpAnswer& res);
  ApiOptions opts_;
  ApiBackend backend_;
  StreamHub& hub_;
  std::unique_ptr<HttpServer> server_;
};

// Whether a Host header value may reach the token-protected paths: empty (HTTP/1.0), an IPv4 or
// bracketed IPv6 literal, localhost, or one of `names` (lower case), each with an optional port.
bool host_allowed(std::string_view host, const std::vector<std::string>& names);
// Whether a HOST:PORT listen address is loopback only (127.0.0.0/8, [::1], localhost).
bool loopback_listen(const std::string& listen);

// Constant-time comparison of an Authorization header with "Bearer <token>".
bool bearer_matches(const std::string& header, const std::string& token);

}  // namespace trading_heal::exporter
