#include "trading_heal/exporter/metrics_http.hpp"

#include <chrono>

#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <prometheus/summary.h>
#include <prometheus/text_serializer.h>

#include "trading_heal/exporter/http_server.hpp"

namespace trading_heal::exporter {

MetricsHttp::MetricsHttp(std::string listen, Render render, std::size_t threads)
    : render_(std::move(render)), self_(std::make_shared<prometheus::Registry>()) {
  ServerOptions o;
  o.listen = std::move(listen);
  o.threads = threads;
  o.max_connections = 256;
  o.header_timeout = std::chrono::seconds(5);
  o.idle_timeout = std::chrono::seconds(5);
  o.keep_alive_max = 100;
  o.write_timeout = std::chrono::seconds(10);
  o.backlog = 128;
  server_ = std::make_unique<HttpServer>(
      std::move(o), [this](const HttpRequest& req, HttpAnswer& a) { serve(req, a); });
  // The families, help texts and quantiles of prometheus-cpp 1.0's MetricsHandler.
  bytes_ = &prometheus::BuildCounter()
                .Name("exposer_transferred_bytes_total")
                .Help("Transferred bytes to metrics services")
                .Register(*self_)
                .Add({});
  scrapes_ = &prometheus::BuildCounter()
                  .Name("exposer_scrapes_total")
                  .Help("Number of times metrics were scraped")
                  .Register(*self_)
                  .Add({});
  latencies_ =
      &prometheus::BuildSummary()
           .Name("exposer_request_latencies")
           .Help("Latencies of serving scrape requests, in microseconds")
           .Register(*self_)
           .Add({}, prometheus::Summary::Quantiles{{0.5, 0.05}, {0.9, 0.01}, {0.99, 0.001}});
}

// Identity encoding only, whatever Accept-Encoding says: compressing the ~0.9 MB body of 1000
// agents costs more CPU than rendering it, and Prometheus accepts an uncompressed answer.
void MetricsHttp::serve(const HttpRequest& req, HttpAnswer& a) {
  if (req.method != "GET" && req.method != "HEAD") {
    a.status = 405;
    a.headers.emplace_back("Allow", "GET, HEAD");
    a.close = true;
    return;
  }
  if (req.path != "/metrics") {
    a.status = 404;
    return;
  }
  const auto t0 = std::chrono::steady_clock::now();
  a.body = body();
  a.content_type = "text/plain; charset=utf-8";
  // Counted after the body was made, as the Exposer did (a scrape shows the previous ones).
  bytes_->Increment(static_cast<double>(a.body.size()));
  scrapes_->Increment();
  latencies_->Observe(static_cast<double>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
          .count()));
}

MetricsHttp::~MetricsHttp() { stop(); }

std::string MetricsHttp::body() const {
  std::string text = prometheus::TextSerializer().Serialize(self_->Collect());
  render_(text);
  return text;
}

tl::expected<int, std::string> MetricsHttp::bind() { return server_->bind(); }

void MetricsHttp::start() { server_->start(); }

void MetricsHttp::stop() {
  if (server_) server_->stop();
}

}  // namespace trading_heal::exporter
