#include "trading_heal/exporter/http_api.hpp"

#include <httplib.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "trading_heal/exporter/http_front.hpp"

namespace trading_heal::exporter {
namespace {

constexpr const char* kJson = "application/json";

void json_error(httplib::Response& res, int status, const std::string& error,
                const std::string& parameter = {}) {
  nlohmann::json j{{"error", error}};
  if (!parameter.empty()) j["parameter"] = parameter;
  res.status = status;
  res.set_content(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", kJson);
}

bool ipv4_literal(std::string_view h) {
  int parts = 0;
  std::size_t i = 0;
  while (i <= h.size()) {
    std::size_t j = i;
    while (j < h.size() && h[j] >= '0' && h[j] <= '9') ++j;
    if (j == i || j - i > 3) return false;
    ++parts;
    if (j == h.size()) break;
    if (h[j] != '.') return false;
    i = j + 1;
  }
  return parts == 4;
}

}  // namespace

bool host_allowed(std::string_view host, const std::vector<std::string>& names) {
  if (host.empty()) return true;
  std::string h;
  if (host.front() == '[') {  // [v6]:port
    const auto close = host.find(']');
    if (close == std::string_view::npos) return false;
    const auto inner = host.substr(1, close - 1);
    return !inner.empty() &&
           inner.find_first_not_of("0123456789abcdefABCDEF:.") == std::string_view::npos;
  }
  h = std::string(host.substr(0, host.find(':')));
  std::transform(h.begin(), h.end(), h.begin(), ::tolower);
  if (h == "localhost" || ipv4_literal(h)) return true;
  return std::find(names.begin(), names.end(), h) != names.end();
}

bool loopback_listen(const std::string& listen) {
  const auto colon = listen.rfind(':');
  std::string h = listen.substr(0, colon == std::string::npos ? listen.size() : colon);
  if (h == "[::1]" || h == "localhost") return true;
  return h.rfind("127.", 0) == 0 && ipv4_literal(h);
}

bool bearer_matches(const std::string& header, const std::string& token) {
  const std::string want = "Bearer " + token;
  // Length is not secret (the token file's size); the bytes are compared without early exit.
  if (header.size() != want.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    diff |= static_cast<unsigned char>(header[i] ^ want[i]);
  }
  return diff == 0;
}

HttpApi::HttpApi(ApiOptions opts, ApiBackend backend, StreamHub& hub)
    : opts_(std::move(opts)), backend_(std::move(backend)), hub_(hub) {
  FrontOptions f;
  f.listen = opts_.listen;
  f.threads = opts_.threads;
  f.max_connections = opts_.max_connections;
  f.header_timeout = opts_.header_timeout;
  f.idle_timeout = opts_.idle_timeout;
  f.keep_alive_max = 20;
  f.write_timeout = std::chrono::seconds(5);
  f.backlog = 1024;
  front_ = std::make_unique<HttpFront>(std::move(f));
  front_->routes().set_payload_max_length(4096);
  routes();
}

HttpApi::~HttpApi() { stop(); }

namespace {

// Everything that is not a route's answer is JSON too: 405 for other methods, the server's own
// errors, an exception in a handler.
void json_errors(httplib::Server& s) {
  s.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    if (req.method == "GET" || req.method == "HEAD")
      return httplib::Server::HandlerResponse::Unhandled;
    res.set_header("Allow", "GET, HEAD");
    res.set_header("Connection", "close");  // an unread body must not be taken for a request
    json_error(res, 405, "method not allowed");
    return httplib::Server::HandlerResponse::Handled;
  });
  s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    switch (res.status) {
      case 404:
        json_error(res, 404, "not found");
        break;
      case 413:
        json_error(res, 413, "request too large");
        break;
      case 414:
        json_error(res, 414, "uri too long");
        break;
      default:
        json_error(res, res.status, "bad request");
        break;
    }
  });
  s.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, const std::exception_ptr&) {
        json_error(res, 500, "internal error");
      });
}

}  // namespace

bool HttpApi::authorize(const httplib::Request& req, httplib::Response& res) const {
  if (!host_allowed(req.get_header_value("Host"), opts_.hosts)) {
    json_error(res, 421,
               "misdirected request: Host " + req.get_header_value("Host") +
                   " is not a name of this API (TRADING_HEAL_API_HOSTS)");
    return false;
  }
  if (opts_.token.empty()) return true;
  if (bearer_matches(req.get_header_value("Authorization"), opts_.token)) return true;
  res.set_header("WWW-Authenticate", "Bearer");
  json_error(res, 401, "a bearer token is required");
  return false;
}

void HttpApi::serve_audit(const httplib::Request& req, httplib::Response& res) {
  if (!authorize(req, res)) return;
  auto q = parse_audit_query(req.params);
  if (!q) return json_error(res, 400, q.error().message, q.error().parameter);
  std::uint64_t stopped_after = 0;
  res.set_content(backend_.audit(*q, &stopped_after), kJson);
  // The answer stays the array users' scripts expect; the header says it may not be all.
  if (stopped_after > 0) {
    res.set_header("X-Audit-Scan",
                   "stopped after " + std::to_string(stopped_after) +
                       " lines: older events were not searched; narrow with since=");
  }
}

void HttpApi::serve_stream(const httplib::Request& req, httplib::Response& res) {
  if (!authorize(req, res)) return;
  auto q = parse_audit_query(req.params);
  if (!q) return json_error(res, 400, q.error().message, q.error().parameter);
  std::uint64_t cursor = 0;
  if (!hub_.subscribe(&cursor)) return json_error(res, 503, "too many stream clients");
  res.set_header("Cache-Control", "no-cache");
  auto query = std::make_shared<AuditQuery>(std::move(*q));
  auto pos = std::make_shared<std::uint64_t>(cursor);
  auto first = std::make_shared<bool>(true);
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, query, pos, first](std::size_t, httplib::DataSink& sink) {
        if (*first) {  // headers go out with the first chunk: tell the client it is on
          *first = false;
          return sink.write(": stream open\n\n", 15);
        }
        std::uint64_t missed = 0;
        auto lines = hub_.wait(*pos, opts_.stream_keepalive, &missed);
        if (hub_.closed()) {
          sink.done();
          return false;
        }
        std::string out;
        if (missed > 0) out += ": missed " + std::to_string(missed) + " events\n\n";
        for (const auto& l : lines) {
          if (matches(*query, l)) out += "event: audit\ndata: " + l + "\n\n";
        }
        if (out.empty()) out = ": keepalive\n\n";
        return sink.write(out.data(), out.size());
      },
      [this](bool) { hub_.unsubscribe(); });
}

void HttpApi::routes() {
  auto& s = front_->routes();
  json_errors(s);
  s.Get("/health", [this](const httplib::Request& req, httplib::Response& res) {
    if (!req.params.empty())
      return json_error(res, 400, "unknown parameter", req.params.begin()->first);
    int status = 200;
    res.set_content(backend_.health(&status), kJson);
    res.status = status;
  });
  s.Get("/status", [this](const httplib::Request& req, httplib::Response& res) {
    if (!authorize(req, res)) return;
    if (!req.params.empty())
      return json_error(res, 400, "unknown parameter", req.params.begin()->first);
    res.set_content(backend_.status(), kJson);
  });
  s.Get("/audit",
        [this](const httplib::Request& req, httplib::Response& res) { serve_audit(req, res); });
  s.Get("/audit/stream",
        [this](const httplib::Request& req, httplib::Response& res) { serve_stream(req, res); });
}

tl::expected<int, std::string> HttpApi::bind() { return front_->bind(); }

void HttpApi::start() { front_->start(); }

void HttpApi::stop() {
  hub_.close();
  if (front_) front_->stop();
}

}  // namespace trading_heal::exporter
