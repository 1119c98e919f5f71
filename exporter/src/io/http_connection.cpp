// One connection of HttpServer: its head read against an absolute deadline, parsed by Beast,
// answered by a worker, written as the client reads, closed gently (http_server.hpp).
#include "http_connection.hpp"

#include <cstdio>
#include <future>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/status.hpp>

namespace trading_heal::exporter {
namespace {

namespace http = beast::http;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::size_t kMaxDrain = 1u << 20;
constexpr auto kDrainTime = 1s;

// Header values from handlers go out on one line each, whatever they hold.
std::string one_line(std::string_view v) {
  std::string out(v);
  for (char& c : out) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  return out;
}

std::string head_of(const HttpAnswer& a, std::size_t length, bool close, const ServerOptions& o,
                    std::size_t served) {
  const auto reason = http::obsolete_reason(http::int_to_status(static_cast<unsigned>(a.status)));
  std::string h = "HTTP/1.1 " + std::to_string(a.status) + " ";
  h.append(reason.data(), reason.size());
  h += "\r\n";
  if (!a.content_type.empty()) h += "Content-Type: " + one_line(a.content_type) + "\r\n";
  for (const auto& [k, v] : a.headers) h += one_line(k) + ": " + one_line(v) + "\r\n";
  if (a.next) {
    h += "Transfer-Encoding: chunked\r\n";
  } else {
    h += "Content-Length: " + std::to_string(length) + "\r\n";
  }
  if (close) {
    h += "Connection: close\r\n";
  } else {
    const auto idle = std::max<std::int64_t>(
        1, std::chrono::duration_cast<std::chrono::seconds>(o.idle_timeout).count());
    h += "Connection: keep-alive\r\nKeep-Alive: timeout=" + std::to_string(idle) +
         ", max=" + std::to_string(o.keep_alive_max - served - 1) + "\r\n";
  }
  h += "\r\n";
  return h;
}

std::string chunk_of(std::string_view data) {
  char size[20];
  const int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  std::string out(size, static_cast<std::size_t>(n));
  out.append(data);
  out += "\r\n";
  return out;
}

}  // namespace

Connection::Connection(Impl& srv, tcp::socket sock)
    : srv_(srv), sock_(std::move(sock)), timer_(srv.io) {
  beast::error_code ignored;
  sock_.set_option(tcp::no_delay(true), ignored);
}

void Connection::start() { await_head(true); }

void Connection::arm(Clock::duration d, void (Connection::*on_expiry)()) {
  const auto gen = ++timer_gen_;
  timer_.expires_after(d);
  timer_.async_wait([self = shared_from_this(), gen, on_expiry](beast::error_code ec) {
    if (ec || self->closed_ || gen != self->timer_gen_) return;
    ((*self).*on_expiry)();
  });
}

void Connection::unlist() {
  if (!listed_) return;
  srv_.waiting.erase(*listed_);
  listed_.reset();
}

void Connection::close_now() {
  if (closed_) return;
  closed_ = true;
  unlist();
  ++timer_gen_;
  timer_.cancel();
  beast::error_code ignored;
  sock_.close(ignored);
  srv_.forget(this);
}

// ---- the head ----

void Connection::await_head(bool first) {
  listed_ = srv_.waiting.insert(srv_.waiting.end(), this);
  deadlines_ = head_deadlines(srv_.clock.mono(), first,
                              {.header = srv_.opts.header_timeout, .idle = srv_.opts.idle_timeout});
  idle_ = in_.empty();
  arm_head();
  if (!in_.empty()) {  // pipelined: the next head may be here already
    on_read(0);
    return;
  }
  read_more();
}

void Connection::read_more() {
  sock_.async_read_some(asio::buffer(chunk_),
                        [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                          if (self->closed_) return;
                          if (ec) return self->close_now();  // the client left (or reset)
                          self->in_.append(self->chunk_.data(), n);
                          self->on_read(n);
                        });
}

void Connection::arm_head() {
  arm(next_head_deadline(deadlines_, in_.size()) - srv_.clock.mono(), &Connection::on_head_late);
}

void Connection::on_read(std::size_t) {
  if (idle_ && !in_.empty()) {  // the request began: now its whole head is awaited
    idle_ = false;
    arm_head();
  }
  const std::size_t from = scanned_ >= 3 ? scanned_ - 3 : 0;
  const auto end = std::string_view(in_).find("\r\n\r\n", from);
  scanned_ = in_.size();
  if (end != std::string_view::npos && end + 4 <= HttpServer::kMaxHead) return take_head(end + 4);
  if (in_.size() > HttpServer::kMaxHead) return head_too_long();
  read_more();
}

void Connection::on_head_late() {
  const auto late = late_head(deadlines_, srv_.clock.mono(), in_.size());
  if (!late) return arm_head();  // the timer ran ahead of the clock
  srv_.timed_out.fetch_add(1, std::memory_order_relaxed);
  if (*late == 0) return close_now();  // silent or idle: nothing to answer
  unlist();
  answer_error(*late);
}

void Connection::head_too_long() {
  unlist();
  const auto line = std::string_view(in_).find("\r\n");
  answer_error(line == std::string_view::npos || line > HttpServer::kMaxTarget ? 414 : 431);
}

void Connection::take_head(std::size_t head_len) {
  unlist();
  ++timer_gen_;
  timer_.cancel();
  http::request_parser<http::empty_body> p;
  p.header_limit(static_cast<std::uint32_t>(HttpServer::kMaxHead));
  p.eager(false);
  beast::error_code ec;
  p.put(asio::buffer(in_.data(), head_len), ec);
  if (ec || !p.is_header_done()) return answer_error(400);
  const auto& m = p.get();
  const auto target = m.target();
  if (target.size() > HttpServer::kMaxTarget) return answer_error(414);
  Job job;
  job.req.method = std::string(m.method_string());
  const auto q = target.find('?');
  job.req.path = percent_decode(std::string_view(target.data(), std::min(q, target.size())), false);
  if (q != beast::string_view::npos) {
    job.req.params = parse_query(std::string_view(target.data() + q + 1, target.size() - q - 1));
  }
  for (const auto& f : m) job.req.headers.emplace_back(f.name_string(), f.value());
  const bool has_body = p.chunked() || p.content_length().value_or(0) > 0;
  job.keep_alive = m.keep_alive() && !has_body;
  job.served = served_;
  in_.erase(0, head_len);
  scanned_ = 0;
  srv_.requests.fetch_add(1, std::memory_order_relaxed);
  asio::post(*srv_.pool, [self = shared_from_this(), job = std::move(job)] { self->serve(job); });
}

// ---- the answer ----

void Connection::serve(const Job& job) {
  HttpAnswer a;
  const auto failed = [&](const char* what) {
    const bool stopping = srv_.stopping.load();
    if (!stopping)
      spdlog::warn("http request failed listen={} error=\"{}\"", srv_.opts.listen, what);
    a = HttpAnswer{};
    a.status = stopping ? 503 : 500;
    a.close = true;
    if (srv_.error_body) srv_.error_body(a);
  };
  try {
    if (srv_.stopping.load()) throw std::runtime_error("stopping");
    srv_.handler(job.req, a);
  } catch (const std::exception& e) {
    failed(e.what());
  } catch (...) {
    failed("unknown exception");
  }
  if (job.req.method == "HEAD") {
    a.next = nullptr;
    if (a.done) a.done();
  }
  if (a.next) return stream(a);
  const bool close = a.close || !job.keep_alive || job.served + 1 >= srv_.opts.keep_alive_max;
  auto out = std::make_shared<Outgoing>();
  out->head = head_of(a, a.body.size(), close, srv_.opts, job.served);
  if (job.req.method != "HEAD") out->body = std::move(a.body);  // written from here: no copy
  const std::size_t n = out->head.size() + out->body.size();
  if (!srv_.reserve_held(n)) {
    asio::post(srv_.io, [self = shared_from_this()] { self->close_now(); });
    return;
  }
  asio::post(srv_.io, [self = shared_from_this(), out = std::move(out), n, close] {
    self->write(out, n, close);
  });
}

void Connection::stream(HttpAnswer& a) {
  bool ok = write_from_worker(head_of(a, 0, true, srv_.opts, 0));
  std::string data;
  while (ok && !srv_.stopping.load()) {
    data.clear();
    const bool more = a.next(data);
    if (!data.empty()) ok = write_from_worker(chunk_of(data));
    if (!more) break;
  }
  if (ok && !srv_.stopping.load()) write_from_worker("0\r\n\r\n");
  if (a.done) a.done();
  asio::post(srv_.io, [self = shared_from_this()] { self->linger_close(); });
}

bool Connection::write_from_worker(std::string bytes) {
  auto done = std::make_shared<std::promise<bool>>();
  auto result = done->get_future();
  asio::post(srv_.io, [self = shared_from_this(),
                       b = std::make_shared<std::string>(std::move(bytes)), done] {
    if (self->closed_) return done->set_value(false);
    self->arm(self->srv_.opts.write_timeout, &Connection::on_write_late);
    asio::async_write(self->sock_, asio::buffer(*b),
                      [self, b, done](beast::error_code ec, std::size_t) {
                        if (!self->closed_) {
                          ++self->timer_gen_;
                          self->timer_.cancel();
                        }
                        done->set_value(!ec && !self->closed_);
                      });
  });
  while (result.wait_for(100ms) != std::future_status::ready) {
    if (srv_.stopping.load()) return false;
  }
  return result.get();
}

void Connection::write(const std::shared_ptr<Outgoing>& out, std::size_t held, bool close) {
  if (closed_) return srv_.release_held(held);
  arm(srv_.opts.write_timeout, &Connection::on_write_late);
  asio::async_write(
      sock_, std::array{asio::buffer(out->head), asio::buffer(out->body)},
      [self = shared_from_this(), out, held, close](beast::error_code ec, std::size_t) {
        self->srv_.release_held(held);
        if (self->closed_) return;
        if (ec) return self->close_now();
        if (close) return self->linger_close();
        ++self->served_;
        self->await_head(false);
      });
}

void Connection::answer_error(int status) {
  HttpAnswer a;
  a.status = status;
  a.close = true;
  if (srv_.error_body) srv_.error_body(a);
  auto out = std::make_shared<Outgoing>();
  out->head = head_of(a, a.body.size(), true, srv_.opts, served_);
  out->body = std::move(a.body);
  write(out, 0, true);
}

// Shuts our side, then reads and drops what the client still sends until it closes, at most
// kDrainTime and kMaxDrain: closing with input unread would reset the connection, and the
// answer with it.
void Connection::linger_close() {
  if (closed_) return;
  unlist();
  beast::error_code ec;
  sock_.shutdown(tcp::socket::shutdown_send, ec);
  if (ec) return close_now();
  arm(kDrainTime, &Connection::close_now);
  drain();
}

void Connection::drain() {
  sock_.async_read_some(asio::buffer(chunk_),
                        [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                          if (self->closed_) return;
                          self->drained_ += n;
                          if (ec || self->drained_ > kMaxDrain) return self->close_now();
                          self->drain();
                        });
}

void Connection::on_write_late() {
  srv_.timed_out.fetch_add(1, std::memory_order_relaxed);
  close_now();
}

}  // namespace trading_heal::exporter
