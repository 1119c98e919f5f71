#include "trading_heal/exporter/http_api.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "trading_heal/exporter/http_server.hpp"

namespace trading_heal::exporter {
namespace {

constexpr const char* kJson = "application/json";

void json_error(HttpAnswer& res, int status, const std::string& error,
                const std::string& parameter = {}) {
  nlohmann::json j{{"error", error}};
  if (!parameter.empty()) j["parameter"] = parameter;
  res.status = status;
  res.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  res.content_type = kJson;
}

// The answers the server makes itself (a head it could not take, a handler's exception).
void server_error(HttpAnswer& res) {
  switch (res.status) {
    case 408:
      return json_error(res, 408, "request head not complete in time");
    case 414:
      return json_error(res, 414, "uri too long");
    case 431:
      return json_error(res, 431, "request head too large");
    case 500:
      return json_error(res, 500, "internal error");
    case 503:
      return json_error(res, 503, "stopping");
    default:
      return json_error(res, res.status, "bad request");
  }
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
  ServerOptions o;
  o.listen = opts_.listen;
  o.threads = opts_.threads;
  o.max_connections = opts_.max_connections;
  o.header_timeout = opts_.header_timeout;
  o.idle_timeout = opts_.idle_timeout;
  o.keep_alive_max = 20;
  o.write_timeout = std::chrono::seconds(5);
  o.backlog = 1024;
  server_ = std::make_unique<HttpServer>(
      std::move(o), [this](const HttpRequest& req, HttpAnswer& res) { serve(req, res); },
      &server_error);
}

HttpApi::~HttpApi() { stop(); }

bool HttpApi::authorize(const HttpRequest& req, HttpAnswer& res) const {
  if (!host_allowed(req.header("Host"), opts_.hosts)) {
    json_error(res, 421,
               "misdirected request: Host " + req.header("Host") +
                   " is not a name of this API (TRADING_HEAL_API_HOSTS)");
    return false;
  }
  if (opts_.token.empty()) return true;
  if (bearer_matches(req.header("Authorization"), opts_.token)) return true;
  res.headers.emplace_back("WWW-Authenticate", "Bearer");
  json_error(res, 401, "a bearer token is required");
  return false;
}

void HttpApi::serve_audit(const HttpRequest& req, HttpAnswer& res) {
  if (!authorize(req, res)) return;
  auto q = parse_audit_query(req.params);
  if (!q) return json_error(res, 400, q.error().message, q.error().parameter);
  std::uint64_t stopped_after = 0;
  res.body = backend_.audit(*q, &stopped_after);
  res.content_type = kJson;
  // The answer stays the array users' scripts expect; the header says it may not be all.
  if (stopped_after > 0) {
    res.headers.emplace_back("X-Audit-Scan",
                             "stopped after " + std::to_string(stopped_after) +
                                 " lines: older events were not searched; narrow with since=");
  }
}

void HttpApi::serve_stream(const HttpRequest& req, HttpAnswer& res) {
  if (!authorize(req, res)) return;
  auto q = parse_audit_query(req.params);
  if (!q) return json_error(res, 400, q.error().message, q.error().parameter);
  std::uint64_t cursor = 0;
  if (!hub_.subscribe(&cursor)) return json_error(res, 503, "too many stream clients");
  res.headers.emplace_back("Cache-Control", "no-cache");
  res.content_type = "text/event-stream";
  auto query = std::make_shared<AuditQuery>(std::move(*q));
  auto first = std::make_shared<bool>(true);
  res.next = [this, query, cursor, first](std::string& out) mutable {
    if (*first) {  // the head goes out with the first chunk: tell the client it is on
      *first = false;
      out += ": stream open\n\n";
      return true;
    }
    std::uint64_t missed = 0;
    auto lines = hub_.wait(cursor, opts_.stream_keepalive, &missed);
    if (hub_.closed()) return false;
    if (missed > 0) out += ": missed " + std::to_string(missed) + " events\n\n";
    for (const auto& l : lines) {
      if (matches(*query, l)) out += "event: audit\ndata: " + l + "\n\n";
    }
    if (out.empty()) out = ": keepalive\n\n";
    return true;
  };
  res.done = [this] { hub_.unsubscribe(); };
}

// Every answer is JSON: 405 for other methods (Connection: close, as a body it announced is
// never read), 404 for other paths, 400 naming an unknown parameter.
void HttpApi::serve(const HttpRequest& req, HttpAnswer& res) {
  if (req.method != "GET" && req.method != "HEAD") {
    res.headers.emplace_back("Allow", "GET, HEAD");
    res.close = true;
    return json_error(res, 405, "method not allowed");
  }
  if (req.path == "/health") {
    if (!req.params.empty())
      return json_error(res, 400, "unknown parameter", req.params.begin()->first);
    int status = 200;
    res.body = backend_.health(&status);
    res.content_type = kJson;
    res.status = status;
  } else if (req.path == "/status") {
    if (!authorize(req, res)) return;
    if (!req.params.empty())
      return json_error(res, 400, "unknown parameter", req.params.begin()->first);
    res.body = backend_.status();
    res.content_type = kJson;
  } else if (req.path == "/audit") {
    serve_audit(req, res);
  } else if (req.path == "/audit/stream") {
    serve_stream(req, res);
  } else {
    json_error(res, 404, "not found");
  }
}

tl::expected<int, std::string> HttpApi::bind() { return server_->bind(); }

void HttpApi::start() { server_->start(); }

void HttpApi::stop() {
  hub_.close();
  if (server_) server_->stop();
}

}  // namespace trading_heal::exporter
