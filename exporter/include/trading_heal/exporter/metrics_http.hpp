// The metrics endpoint on TRADING_HEAL_METRICS_LISTEN (:9120): GET /metrics in the Prometheus
// text format, served by HttpServer (http_server.hpp) from text the model renders directly
// (MetricsModel::render) instead of prometheus-cpp's Exposer (Registry::Collect + TextSerializer:
// ~76 ms for 1000 agents; this path: see bench/exporter). The exposition is the one the Exposer
// served, its own exposer_* self-metrics included (same names, help, types; the summary of request
// latencies in microseconds), followed by the model's families.
//
// Other paths: 404; other methods: 405. Always served uncompressed (the Exposer gzipped when
// asked): compressing ~0.9 MB costs more CPU than rendering it; Prometheus accepts identity.
//
// Connections: the HttpServer reads the request heads (complete within 5 s, idle keep-alive
// closed after 5 s, at most 256 held), so trickling clients hold none of the two worker threads.
// The body of a scrape is built in one string (the self-metrics, then the model appends to it) that
// becomes the answer's body without a copy.
//
// Thread-safety: requests are served on the server's worker threads; `render` must be
// thread-safe. bind()/start()/stop() from one thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <tl/expected.hpp>

namespace prometheus {
class Counter;
class Registry;
class Summary;
}  // namespace prometheus

namespace trading_heal::exporter {

class HttpServer;
struct HttpRequest;
struct HttpAnswer;

class MetricsHttp {
 public:
  // `listen` is HOST:PORT (port 0 picks a free one); `render` appends the model's exposition
  // to its argument.
  using Render = std::function<void(std::string&)>;
  MetricsHttp(std::string listen, Render render, std::size_t threads = 2);
  ~MetricsHttp();
  MetricsHttp(const MetricsHttp&) = delete;
  MetricsHttp& operator=(const MetricsHttp&) = delete;

  tl::expected<int, std::string> bind();  // the bound port
  void start();                           // serves on its own threads
  void stop();

  // The body of one scrape (self-metrics, then the model), without the HTTP exchange.
  std::string body() const;

 private:
  void serve(const HttpRequest& req, HttpAnswer& a);
  Render render_;
  std::shared_ptr<prometheus::Registry> self_;  // exposer_* metrics, as the Exposer had them
  prometheus::Counter* bytes_ = nullptr;
  prometheus::Counter* scrapes_ = nullptr;
  prometheus::Summary* latencies_ = nullptr;
  std::unique_ptr<HttpServer> server_;
};

}  // namespace trading_heal::exporter
