// HttpServer (http_server.hpp): the server, its connection limit and its workers. A connection's
// own life (head, answer, close) is in http_connection.cpp.
#include "trading_heal/exporter/http_server.hpp"

#include <strings.h>

#include <spdlog/spdlog.h>

#include "http_connection.hpp"

namespace trading_heal::exporter {

std::string HttpRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && ::strncasecmp(k.data(), name.data(), k.size()) == 0) return v;
  }
  return {};
}

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '%' && i + 2 < s.size()) {
      const int hi = hex_digit(s[i + 1]);
      const int lo = hex_digit(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += plus_is_space && c == '+' ? ' ' : c;
  }
  return out;
}

QueryParams parse_query(std::string_view query) {
  QueryParams params;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto piece = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (piece.empty()) continue;
    const auto eq = piece.find('=');
    params.emplace(
        percent_decode(piece.substr(0, eq), true),
        eq == std::string_view::npos ? std::string{} : percent_decode(piece.substr(eq + 1), true));
  }
  return params;
}

HttpServer::HttpServer(ServerOptions opts, HttpHandler handler, HttpErrorBody error_body)
    : impl_(std::make_unique<Impl>(std::move(opts), std::move(handler), std::move(error_body))) {}

HttpServer::~HttpServer() { stop(); }

tl::expected<int, std::string> HttpServer::bind() { return impl_->bind(); }

void HttpServer::start() { impl_->start(); }

void HttpServer::stop() {
  if (impl_) impl_->stop();
}

ServerStats HttpServer::stats() const { return impl_->stats(); }

// ---- Impl ----

HttpServer::Impl::Impl(ServerOptions o, HttpHandler h, HttpErrorBody e)
    : opts(std::move(o)),
      clock(opts.clock != nullptr ? *opts.clock : common::process_clock()),
      handler(std::move(h)),
      error_body(std::move(e)),
      acceptor(io),
      accept_pause(io),
      work(asio::make_work_guard(io)) {}

HttpServer::Impl::~Impl() { stop(); }

tl::expected<int, std::string> HttpServer::Impl::bind() {
  const std::string& listen = opts.listen;
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) return tl::unexpected("bad listen address " + listen);
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string port = listen.substr(colon + 1);
  if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos) {
    return tl::unexpected("bad listen address " + listen);
  }
  beast::error_code ec;
  tcp::resolver resolver(io);
  const auto results = resolver.resolve(host, port, tcp::resolver::passive, ec);
  if (ec) return tl::unexpected("cannot listen on " + listen + ": " + ec.message());
  std::string err = "no address";
  for (const auto& entry : results) {
    beast::error_code e;
    tcp::acceptor a(io);
    const auto ep = entry.endpoint();
    if (!a.open(ep.protocol(), e) && !a.set_option(asio::socket_base::reuse_address(true), e) &&
        !a.bind(ep, e) && !a.listen(opts.backlog, e)) {
      acceptor = std::move(a);
      return static_cast<int>(acceptor.local_endpoint().port());
    }
    err = e.message();
  }
  return tl::unexpected("cannot listen on " + listen + ": " + err);
}

void HttpServer::Impl::start() {
  pool.emplace(std::max<std::size_t>(opts.threads, 1));
  accept();
  io_thread = std::thread([this] { io.run(); });
}

void HttpServer::Impl::accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket sock) {
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
    if (ec) {
      // Out of descriptors (EMFILE, ENFILE, ENOBUFS): give up the oldest waiting connection, or
      // leave the rest in the backlog for a moment.
      if (evict_oldest_waiting()) return accept();
      accept_pause.expires_after(std::chrono::milliseconds(100));
      accept_pause.async_wait([this](beast::error_code e) {
        if (!e) accept();
      });
      return;
    }
    accepted.fetch_add(1, std::memory_order_relaxed);
    if (conns.size() >= opts.max_connections && !evict_oldest_waiting()) {
      beast::error_code ignored;
      sock.close(ignored);  // every held connection is being answered
      evicted.fetch_add(1, std::memory_order_relaxed);
    } else {
      auto c = std::make_shared<Connection>(*this, std::move(sock));
      conns.insert(c.get());
      open.store(conns.size(), std::memory_order_relaxed);
      c->start();
    }
    accept();
  });
}

bool HttpServer::Impl::evict_oldest_waiting() {
  if (waiting.empty()) return false;
  Connection* oldest = waiting.front();
  const auto n = evicted.fetch_add(1, std::memory_order_relaxed) + 1;
  oldest->close_now();
  const auto now = std::chrono::steady_clock::now();
  if (now - limit_logged >= std::chrono::seconds(10)) {
    spdlog::warn(
        "http connection limit reached listen={} max_connections={} closed_waiting_total={}",
        opts.listen, opts.max_connections, n);
    limit_logged = now;
  }
  return true;
}

void HttpServer::Impl::forget(Connection* c) {
  conns.erase(c);
  open.store(conns.size(), std::memory_order_relaxed);
}

bool HttpServer::Impl::reserve_held(std::size_t n) {
  std::unique_lock lock(held_mu);
  const auto ok = [&] { return stopping.load() || held + n <= kMaxHeldBytes || held == 0; };
  if (!held_cv.wait_for(lock, opts.write_timeout, ok) || stopping.load()) return false;
  held += n;
  return true;
}

void HttpServer::Impl::release_held(std::size_t n) {
  {
    std::lock_guard lock(held_mu);
    held -= std::min(held, n);
  }
  held_cv.notify_all();
}

void HttpServer::Impl::stop() {
  if (!pool || stopped) return;
  stopped = true;
  stopping = true;
  held_cv.notify_all();
  asio::post(io, [this] {
    beast::error_code ignored;
    acceptor.close(ignored);
    accept_pause.cancel();
    // Closing a connection removes it from `conns`: close a copy.
    std::vector<Connection*> all(conns.begin(), conns.end());
    for (Connection* c : all) c->close_now();
  });
  pool->join();  // handlers end; streams see the stop at their next chunk
  work.reset();
  io.stop();
  if (io_thread.joinable()) io_thread.join();
}

ServerStats HttpServer::Impl::stats() const {
  ServerStats s;
  s.accepted = accepted.load();
  s.requests = requests.load();
  s.timed_out = timed_out.load();
  s.evicted = evicted.load();
  s.open = open.load();
  return s;
}

}  // namespace trading_heal::exporter
