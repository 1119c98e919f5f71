#include "trading_heal/exporter/metrics_http.hpp"

#include <httplib.h>

#include <chrono>

#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <prometheus/summary.h>
#include <prometheus/text_serializer.h>

#include "trading_heal/exporter/http_front.hpp"

namespace trading_heal::exporter {

MetricsHttp::MetricsHttp(std::string listen, Render render, std::size_t threads)
    : render_(std::move(render)), self_(std::make_shared<prometheus::Registry>()) {
  FrontOptions f;
  f.listen = std::move(listen);
  f.threads = threads;
  f.max_connections = 256;
  f.header_timeout = std::chrono::seconds(5);
  f.idle_timeout = std::chrono::seconds(5);
  f.keep_alive_max = 100;
  f.write_timeout = std::chrono::seconds(10);
  f.backlog = 128;
  front_ = std::make_unique<HttpFront>(std::move(f));
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

  auto& server = front_->routes();
  server.set_payload_max_length(4096);
  server.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    if (req.method == "GET" || req.method == "HEAD")
      return httplib::Server::HandlerResponse::Unhandled;
    res.status = 405;
    res.set_header("Allow", "GET, HEAD");
    res.set_header("Connection", "close");
    return httplib::Server::HandlerResponse::Handled;
  });
  server.Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) {
    const auto t0 = std::chrono::steady_clock::now();
    // Identity encoding only: cpp-httplib would gzip (or brotli) the ~0.9 MB body of 1000
    // agents at its default level, ~40 ms of CPU a scrape — more than rendering it. Prometheus
    // accepts an uncompressed answer. The request object is httplib's own non-const one.
    const_cast<httplib::Request&>(req).headers.erase("Accept-Encoding");
    res.body = body();
    res.set_header("Content-Type", "text/plain; charset=utf-8");
    const auto size = res.body.size();
    // Counted after the body was made, as the Exposer did (a scrape shows the previous ones).
    bytes_->Increment(static_cast<double>(size));
    scrapes_->Increment();
    latencies_->Observe(static_cast<double>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
            .count()));
  });
}

MetricsHttp::~MetricsHttp() { stop(); }

std::string MetricsHttp::body() const {
  std::string text = prometheus::TextSerializer().Serialize(self_->Collect());
  render_(text);
  return text;
}

tl::expected<int, std::string> MetricsHttp::bind() { return front_->bind(); }

void MetricsHttp::start() { front_->start(); }

void MetricsHttp::stop() {
  if (front_) front_->stop();
}

}  // namespace trading_heal::exporter
