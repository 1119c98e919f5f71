// The status and audit API on TRADING_HEAL_API_LISTEN (cpp-httplib), served by its own thread
// pool, never by the loop thread.
//
//   GET /health        200 {"status":"ok"} / 503 {"status":"degraded","silent":[...]}
//   GET /status        per-agent current state (bearer token when configured)
//   GET /audit         JSON array, oldest first; symbol action agent since until limit
//   GET /audit/stream  Server-Sent Events of new audit lines (same filters minus the window)
// Any other method: 405 (Allow: GET); unknown path: 404; bad parameter: 400 naming it; URI over
// 8 KiB: 414; body over 4 KiB: 413; the answers are JSON.
//
// Hostile clients: each connection holds one pool thread while its request is read, bounded by
// the read timeout per read; keep-alive is short and capped. Limitation (cpp-httplib 0.11): a
// client trickling a byte per read-timeout keeps a thread longer, so more such clients than
// threads delay other requests — expose :9121 to trusted networks or behind a proxy.
//
// Thread-safety: the backend callbacks run on pool threads, concurrently; they must be
// thread-safe (the daemon guards its state with a mutex). start()/stop() from one thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <tl/expected.hpp>

#include "trading_heal/exporter/audit_query.hpp"
#include "trading_heal/exporter/stream_hub.hpp"

namespace httplib {
class Server;
}

namespace trading_heal::exporter {

struct ApiOptions {
  std::string listen = "127.0.0.1:9121";  // HOST:PORT, port 0 picks a free one
  std::string token;                      // empty: /status and /audit need no token
  std::size_t threads = 32;
  std::chrono::seconds read_timeout{3};
  std::chrono::milliseconds stream_keepalive{15000};
};

struct ApiBackend {
  std::function<std::string(int* status)> health;
  std::function<std::string()> status;
  std::function<std::string(const AuditQuery&)> audit;
};

class HttpApi {
 public:
  HttpApi(ApiOptions opts, ApiBackend backend, StreamHub& hub);
  ~HttpApi();
  HttpApi(const HttpApi&) = delete;
  HttpApi& operator=(const HttpApi&) = delete;

  // Binds the listening socket; returns the port (useful with port 0).
  tl::expected<int, std::string> bind();
  void start();  // serves on its own thread
  void stop();   // stops accepting, ends streams, joins

 private:
  void routes();
  ApiOptions opts_;
  ApiBackend backend_;
  StreamHub& hub_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int listen_fd_ = -1;
};

// Constant-time comparison of an Authorization header with "Bearer <token>".
bool bearer_matches(const std::string& header, const std::string& token);

}  // namespace trading_heal::exporter
