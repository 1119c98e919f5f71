#include "trading_heal/exporter/metrics_http.hpp"

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>

#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <prometheus/summary.h>
#include <prometheus/text_serializer.h>

namespace trading_heal::exporter {

MetricsHttp::MetricsHttp(std::string listen, std::function<std::string()> render,
                         std::size_t threads)
    : listen_(std::move(listen)), render_(std::move(render)),
      self_(std::make_shared<prometheus::Registry>()),
      server_(std::make_unique<httplib::Server>()) {
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
  latencies_ = &prometheus::BuildSummary()
                    .Name("exposer_request_latencies")
                    .Help("Latencies of serving scrape requests, in microseconds")
                    .Register(*self_)
                    .Add({}, prometheus::Summary::Quantiles{{0.5, 0.05}, {0.9, 0.01}, {0.99, 0.001}});

  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_->set_read_timeout(std::chrono::seconds(3));
  server_->set_write_timeout(std::chrono::seconds(10));
  server_->set_keep_alive_timeout(5);
  server_->set_payload_max_length(4096);
  server_->set_socket_options([this](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listen_fd_ = sock;
  });
  server_->set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    if (req.method == "GET" || req.method == "HEAD") return httplib::Server::HandlerResponse::Unhandled;
    res.status = 405;
    res.set_header("Allow", "GET, HEAD");
    res.set_header("Connection", "close");
    return httplib::Server::HandlerResponse::Handled;
  });
  server_->Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) {
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
  text += render_();
  return text;
}

tl::expected<int, std::string> MetricsHttp::bind() {
  const auto colon = listen_.rfind(':');
  if (colon == std::string::npos) return tl::unexpected("bad listen address " + listen_);
  std::string host = listen_.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port = -1;
  try {
    port = std::stoi(listen_.substr(colon + 1));
  } catch (const std::exception&) {
    return tl::unexpected("bad listen address " + listen_);
  }
  const int bound =
      port == 0 ? server_->bind_to_any_port(host) : (server_->bind_to_port(host, port) ? port : -1);
  if (bound <= 0) return tl::unexpected("cannot listen on " + listen_);
  if (listen_fd_ >= 0) ::listen(listen_fd_, 128);
  return bound;
}

void MetricsHttp::start() {
  thread_ = std::thread([this] { server_->listen_after_bind(); });
}

void MetricsHttp::stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace trading_heal::exporter
