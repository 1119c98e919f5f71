#include "trading_heal/exporter/http_front.hpp"

#include <arpa/inet.h>
#include <httplib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <spdlog/spdlog.h>

namespace trading_heal::exporter {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto kDrainTime = 1s;
constexpr std::size_t kDrainBytes = 1 << 20;
// The unsent tail of an answer a client does not read fast enough is handed to the front, so
// that a slow reader holds no worker: at most this much per connection and in all (beyond it,
// the worker writes on within the write timeout, as before).
constexpr std::size_t kMaxDeferredPerConn = 16u << 20;
constexpr std::size_t kMaxDeferredTotal = 64u << 20;

// httplib::Server with its request processing reachable: the front calls process_request()
// itself on a stream it made, instead of httplib's accept loop (listen_after_bind).
class Router : public httplib::Server {
 public:
  using httplib::Server::process_request;
  // httplib writes chunked answers (the SSE stream) while its listening socket is valid; the
  // front keeps it set to its own listening socket while serving, invalid once stopping.
  void set_serving(int fd) { svr_sock_ = fd; }
};

// Set by the post-routing handler (called for every answer, on the worker's thread): the
// answer says the connection ends (Connection: close, or a malformed request).
thread_local bool t_close_after = false;

struct Conn {
  int fd = -1;
  std::string buf;          // received, not yet handed on
  std::size_t scanned = 0;  // buf[0, scanned) holds no "\r\n\r\n"
  std::size_t head = 0;     // length of the complete head at the start of buf, else 0
  bool eof = false;         // the client shut its side down
  bool draining = false;    // answered and shut down for writing: input is read and dropped
                            // until the client closes or drain_deadline, so that closing with
                            // unread input (a reset) cannot destroy the answer in flight
  std::size_t served = 0;   // requests answered on this connection
  std::size_t drained = 0;  // bytes dropped while draining
  Clock::time_point since;  // accepted, or its previous answer written
  Clock::time_point head_deadline;
  Clock::time_point idle_deadline;
  // The deferred tail of the last answer (see kMaxDeferredPerConn), sent by the front; what
  // happens once it is sent: the same as after an answer written in full by the worker.
  enum class After { kKeep, kDrain, kClose };
  std::string out;
  std::size_t out_pos = 0;
  After after = After::kKeep;
  Clock::time_point out_deadline;
  std::atomic<std::size_t>* deferred_total = nullptr;  // the front's budget, given back here
  ~Conn() { release_out(); }
  void release_out() {
    if (deferred_total != nullptr && !out.empty()) *deferred_total -= out.size();
    out.clear();
    out.shrink_to_fit();
    out_pos = 0;
  }
  bool flushing() const { return !out.empty(); }
  Clock::time_point deadline() const {
    if (flushing()) return out_deadline;
    if (draining) return head_deadline;
    return buf.empty() ? std::min(head_deadline, idle_deadline) : head_deadline;
  }
  void find_head() {
    const std::size_t from = scanned >= 3 ? scanned - 3 : 0;
    const auto p = std::string_view(buf).find("\r\n\r\n", from);
    head = p == std::string_view::npos ? 0 : p + 4;
    scanned = buf.size();
  }
};

void address_of(const sockaddr_storage& a, std::string& ip, int& port) {
  char text[INET6_ADDRSTRLEN] = {};
  port = -1;
  if (a.ss_family == AF_INET) {
    sockaddr_in v4{};
    std::memcpy(&v4, &a, sizeof v4);
    ::inet_ntop(AF_INET, &v4.sin_addr, text, sizeof text);
    port = ntohs(v4.sin_port);
  } else if (a.ss_family == AF_INET6) {
    sockaddr_in6 v6{};
    std::memcpy(&v6, &a, sizeof v6);
    ::inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof text);
    port = ntohs(v6.sin6_port);
  }
  ip = text;
}

int poll_ms(Clock::time_point deadline) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, 60000));
}

// What a worker gives httplib: reads are the request head the front collected (then end of
// stream), writes go to the socket, each call complete within the write timeout or failed. When
// the client stops reading, the rest of a write is kept in the connection for the front to send
// (within the budget), and the write counts as done; a further write (a stream) first sends it.
class HeadStream final : public httplib::Stream {
 public:
  HeadStream(Conn& c, std::string_view head, std::chrono::milliseconds write_timeout)
      : c_(c), fd_(c.fd), head_(head), write_timeout_(write_timeout) {}

  bool is_readable() const override { return pos_ < head_.size(); }
  bool is_writable() const override {
    pollfd p{fd_, POLLOUT, 0};
    const auto deadline = Clock::now() + write_timeout_;
    for (;;) {
      const int r = ::poll(&p, 1, poll_ms(deadline));
      if (r < 0 && errno == EINTR) continue;
      return r > 0 && (p.revents & POLLOUT) != 0;
    }
  }
  ssize_t read(char* ptr, size_t size) override {
    const std::size_t n = std::min(size, head_.size() - pos_);
    std::memcpy(ptr, head_.data() + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    const auto deadline = Clock::now() + write_timeout_;
    if (c_.flushing()) {
      if (!send_within(c_.out.data() + c_.out_pos, c_.out.size() - c_.out_pos, deadline, false)) {
        return -1;
      }
      c_.release_out();
    }
    return send_within(ptr, size, deadline, true) ? static_cast<ssize_t>(size) : -1;
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0) address_of(a, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0) address_of(a, ip, port);
  }
  socket_t socket() const override { return fd_; }

 private:
  // Sends [ptr, ptr + size) before `deadline`; when the socket is full and `may_defer`, keeps
  // the rest in the connection instead of waiting, if the budget allows.
  bool send_within(const char* ptr, std::size_t size, Clock::time_point deadline, bool may_defer) {
    std::size_t done = 0;
    while (done < size) {
      const ssize_t w = ::send(fd_, ptr + done, size - done, MSG_NOSIGNAL);
      if (w > 0) {
        done += static_cast<std::size_t>(w);
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (may_defer && defer(ptr + done, size - done)) return true;
        pollfd p{fd_, POLLOUT, 0};
        const int r = ::poll(&p, 1, poll_ms(deadline));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0 || Clock::now() >= deadline) return false;
        continue;
      }
      return false;
    }
    return true;
  }
  bool defer(const char* ptr, std::size_t n) {
    if (c_.deferred_total == nullptr || n > kMaxDeferredPerConn) return false;
    auto& total = *c_.deferred_total;
    std::size_t now = total.load();
    do {
      if (now + n > kMaxDeferredTotal) return false;
    } while (!total.compare_exchange_weak(now, now + n));
    c_.out.assign(ptr, n);
    c_.out_pos = 0;
    return true;
  }

  Conn& c_;
  int fd_;
  std::string_view head_;
  std::size_t pos_ = 0;
  std::chrono::milliseconds write_timeout_;
};

}  // namespace

struct HttpFront::Impl {
  FrontOptions opts;
  Router router;
  int listen_fd = -1;
  int epfd = -1;
  int wakefd = -1;
  std::thread front;
  std::vector<std::thread> workers;
  std::atomic<bool> stopping{false};
  bool started = false;

  // Front thread only.
  std::unordered_map<int, std::unique_ptr<Conn>> waiting;
  Clock::time_point next_check = Clock::time_point::max();
  bool accept_paused = false;
  Clock::time_point accept_resume{};
  Clock::time_point limit_logged{};

  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::unique_ptr<Conn>> jobs;       // guarded by mu: complete heads, for workers
  std::vector<std::unique_ptr<Conn>> returned;  // guarded by mu: kept alive, for the front
  bool pool_stop = false;                       // guarded by mu

  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> timed_out{0};
  std::atomic<std::uint64_t> evicted{0};
  std::atomic<std::size_t> open{0};
  std::atomic<std::size_t> deferred{0};  // bytes of answers' tails held for slow readers

  explicit Impl(FrontOptions o) : opts(std::move(o)) {
    router.set_keep_alive_max_count(opts.keep_alive_max);
    router.set_keep_alive_timeout(std::max<time_t>(
        1, std::chrono::duration_cast<std::chrono::seconds>(opts.idle_timeout).count()));
    router.set_post_routing_handler([](const httplib::Request&, httplib::Response& res) {
      t_close_after = res.status == 400 || res.status == 414 || res.status == 431 ||
                      res.get_header_value("Connection") == "close";
    });
  }

  void close_conn(int fd) {
    ::close(fd);
    --open;
  }

  void wake() {
    const std::uint64_t one = 1;
    (void)!::write(wakefd, &one, sizeof one);
  }

  // ---- front thread ----

  void add_waiting(std::unique_ptr<Conn> c) {
    epoll_event ev{};
    ev.events = c->flushing() ? static_cast<std::uint32_t>(EPOLLOUT) : EPOLLIN | EPOLLRDHUP;
    ev.data.fd = c->fd;
    if (::epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
      close_conn(c->fd);
      return;
    }
    next_check = std::min(next_check, c->deadline());
    waiting.emplace(c->fd, std::move(c));
  }

  void dispatch(std::unique_ptr<Conn> c) {
    {
      std::lock_guard lock(mu);
      jobs.push_back(std::move(c));
    }
    cv.notify_one();
  }

  void take_waiting_to_worker(int fd) {
    auto it = waiting.find(fd);
    ::epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nullptr);
    auto c = std::move(it->second);
    waiting.erase(it);
    dispatch(std::move(c));
  }

  void drop_waiting(int fd) {
    ::epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nullptr);
    waiting.erase(fd);
    close_conn(fd);
  }

  // Closes the connection that has waited longest for its head; false when none waits.
  bool evict_oldest() {
    auto oldest = waiting.end();
    for (auto it = waiting.begin(); it != waiting.end(); ++it) {
      if (oldest == waiting.end() || it->second->since < oldest->second->since) oldest = it;
    }
    if (oldest == waiting.end()) return false;
    drop_waiting(oldest->first);
    const auto n = ++evicted;
    const auto now = Clock::now();
    if (now - limit_logged >= 10s) {
      spdlog::warn(
          "http connection limit reached listen={} max_connections={} "
          "closed_waiting_total={}",
          opts.listen, opts.max_connections, n);
      limit_logged = now;
    }
    return true;
  }

  void set_accepting(bool on) {
    epoll_event ev{};
    ev.events = on ? static_cast<std::uint32_t>(EPOLLIN) : 0U;
    ev.data.fd = listen_fd;
    ::epoll_ctl(epfd, EPOLL_CTL_MOD, listen_fd, &ev);
    accept_paused = !on;
  }

  void on_accept() {
    for (int i = 0; i < 256; ++i) {
      const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          if (evict_oldest()) continue;
          // Nothing to give up: leave the rest in the backlog for a moment.
          set_accepting(false);
          accept_resume = Clock::now() + 100ms;
        }
        return;
      }
      ++accepted;
      if (open >= opts.max_connections && !evict_oldest()) {
        ::close(fd);  // every held connection is being answered
        ++evicted;
        continue;
      }
      ++open;
      int yes = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
      auto c = std::make_unique<Conn>();
      c->fd = fd;
      c->deferred_total = &deferred;
      c->since = Clock::now();
      c->head_deadline = c->idle_deadline = c->since + opts.header_timeout;
      add_waiting(std::move(c));
    }
  }

  void on_event(int fd) {
    auto it = waiting.find(fd);
    if (it == waiting.end()) return;
    Conn& c = *it->second;
    if (c.flushing()) {
      on_writable(fd, c);
      return;
    }
    char tmp[4096];
    if (c.draining) {
      for (;;) {
        const ssize_t r = ::recv(fd, tmp, sizeof tmp, 0);
        if (r > 0 && (c.drained += static_cast<std::size_t>(r)) < kDrainBytes) continue;
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        drop_waiting(fd);  // the client closed, or it sends too much
        return;
      }
    }
    while (c.buf.size() < kMaxHead) {
      const ssize_t r = ::recv(fd, tmp, std::min(sizeof tmp, kMaxHead - c.buf.size()), 0);
      if (r > 0) {
        c.buf.append(tmp, static_cast<std::size_t>(r));
        continue;
      }
      if (r == 0) {
        c.eof = true;
        break;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      drop_waiting(fd);  // reset
      return;
    }
    c.find_head();
    if (c.head > 0 || c.buf.size() >= kMaxHead) {
      take_waiting_to_worker(fd);
    } else if (c.eof) {
      drop_waiting(fd);
    }
  }

  // Sends more of a deferred tail; once it is all sent, the connection goes on as after an
  // answer the worker wrote in full.
  void on_writable(int fd, Conn& c) {
    while (c.out_pos < c.out.size()) {
      const ssize_t w =
          ::send(fd, c.out.data() + c.out_pos, c.out.size() - c.out_pos, MSG_NOSIGNAL);
      if (w > 0) {
        c.out_pos += static_cast<std::size_t>(w);
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      drop_waiting(fd);  // the client is gone
      return;
    }
    c.release_out();
    ::epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nullptr);
    auto it = waiting.find(fd);
    auto conn = std::move(it->second);
    waiting.erase(it);
    after_answer(std::move(conn));
  }

  // A connection whose answer is sent: closed, drained, or waiting for its next request.
  void after_answer(std::unique_ptr<Conn> c) {
    const auto now = Clock::now();
    c->since = now;
    switch (c->after) {
      case Conn::After::kClose:
        close_conn(c->fd);
        return;
      case Conn::After::kDrain:
        ::shutdown(c->fd, SHUT_WR);
        c->draining = true;
        c->head_deadline = now + kDrainTime;
        add_waiting(std::move(c));
        return;
      case Conn::After::kKeep:
        break;
    }
    c->head_deadline = now + opts.header_timeout;
    c->idle_deadline = now + opts.idle_timeout;
    c->scanned = 0;
    c->find_head();
    if (c->head > 0 || c->buf.size() >= kMaxHead) {
      dispatch(std::move(c));  // a pipelined request
    } else if (c->eof) {
      close_conn(c->fd);
    } else {
      add_waiting(std::move(c));
    }
  }

  void take_returned() {
    std::vector<std::unique_ptr<Conn>> back;
    {
      std::lock_guard lock(mu);
      back.swap(returned);
    }
    const auto now = Clock::now();
    for (auto& c : back) {
      if (c->flushing()) {
        c->since = now;
        c->out_deadline = now + opts.write_timeout;
        add_waiting(std::move(c));
      } else {
        after_answer(std::move(c));
      }
    }
  }

  void expire(Clock::time_point now) {
    next_check = Clock::time_point::max();
    for (auto it = waiting.begin(); it != waiting.end();) {
      const Conn& c = *it->second;
      const auto d = c.deadline();
      if (now < d) {
        next_check = std::min(next_check, d);
        ++it;
        continue;
      }
      // A client that did not read its answer within the write timeout is just closed.
      if (!c.flushing() && !c.buf.empty() && !c.draining) {
        // Part of a request: say why (best effort, never blocks), then drain for a moment.
        static constexpr std::string_view k408 =
            "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        (void)!::send(c.fd, k408.data(), k408.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        ::shutdown(c.fd, SHUT_WR);
        ++timed_out;
        it->second->draining = true;
        it->second->head_deadline = now + kDrainTime;
        next_check = std::min(next_check, it->second->head_deadline);
        ++it;
        continue;
      }
      if (!c.draining) ++timed_out;
      ::epoll_ctl(epfd, EPOLL_CTL_DEL, c.fd, nullptr);
      close_conn(c.fd);
      it = waiting.erase(it);
    }
  }

  void run_front() {
    epoll_event evs[64];
    while (!stopping) {
      auto next = next_check;
      if (accept_paused) next = std::min(next, accept_resume);
      const int timeout = next == Clock::time_point::max() ? -1 : poll_ms(next);
      const int n = ::epoll_wait(epfd, evs, 64, timeout);
      if (n < 0 && errno != EINTR) {
        spdlog::error("http front epoll_wait failed listen={} error=\"{}\"", opts.listen,
                      std::strerror(errno));
        break;
      }
      for (int i = 0; i < n && !stopping; ++i) {
        const int fd = evs[i].data.fd;
        if (fd == wakefd) {
          std::uint64_t v = 0;
          (void)!::read(wakefd, &v, sizeof v);
          take_returned();
        } else if (fd == listen_fd) {
          on_accept();
        } else {
          on_event(fd);
        }
      }
      const auto now = Clock::now();
      if (accept_paused && now >= accept_resume) set_accepting(true);
      if (now >= next_check) expire(now);
    }
    for (auto& [fd, c] : waiting) close_conn(fd);
    waiting.clear();
  }

  // ---- workers ----

  void serve(std::unique_ptr<Conn> c) {
    const bool cut = c->head == 0;  // a head over kMaxHead, handed on cut
    const std::size_t len = cut ? c->buf.size() : c->head;
    const bool last = cut || c->eof || c->served + 1 >= opts.keep_alive_max || stopping;
    bool ok = false;
    bool closed = false;
    t_close_after = false;
    {
      HeadStream s(*c, std::string_view(c->buf).substr(0, len), opts.write_timeout);
      try {
        ok = router.process_request(s, last, closed, nullptr);
      } catch (const std::exception& e) {
        spdlog::warn("http request failed listen={} error=\"{}\"", opts.listen, e.what());
      }
    }
    ++requests;
    c->buf.erase(0, len);
    ++c->served;
    if (!ok || stopping) {  // a failed write, or shutting down
      close_conn(c->fd);
      return;
    }
    if (c->eof) {
      c->after = Conn::After::kClose;  // the client is done
    } else if (cut || closed || last || t_close_after) {
      // The answer ends the connection, but the client may still be sending (the rest of a cut
      // head, a body, pipelined requests): drain, so that no reset destroys the answer.
      c->after = Conn::After::kDrain;
    } else {
      c->after = Conn::After::kKeep;
    }
    if (!c->flushing() && c->after == Conn::After::kClose) {
      close_conn(c->fd);
      return;
    }
    {
      std::lock_guard lock(mu);
      returned.push_back(std::move(c));
    }
    wake();
  }

  void run_worker() {
    for (;;) {
      std::unique_ptr<Conn> c;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return pool_stop || !jobs.empty(); });
        if (pool_stop) return;
        c = std::move(jobs.front());
        jobs.pop_front();
      }
      serve(std::move(c));
    }
  }
};

HttpFront::HttpFront(FrontOptions opts) : impl_(std::make_unique<Impl>(std::move(opts))) {}

HttpFront::~HttpFront() { stop(); }

httplib::Server& HttpFront::routes() { return impl_->router; }

tl::expected<int, std::string> HttpFront::bind() {
  auto& m = *impl_;
  const std::string& listen = m.opts.listen;
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
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  if (const int rc =
          ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
      rc != 0) {
    return tl::unexpected("cannot listen on " + listen + ": " + ::gai_strerror(rc));
  }
  std::string err = "no address";
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    const int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      err = std::strerror(errno);
      continue;
    }
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, m.opts.backlog) == 0) {
      m.listen_fd = fd;
      break;
    }
    err = std::strerror(errno);
    ::close(fd);
  }
  ::freeaddrinfo(res);
  if (m.listen_fd < 0) return tl::unexpected("cannot listen on " + listen + ": " + err);
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  ::getsockname(m.listen_fd, reinterpret_cast<sockaddr*>(&a), &len);
  std::string ip;
  int bound = -1;
  address_of(a, ip, bound);
  return bound;
}

void HttpFront::start() {
  auto& m = *impl_;
  if (m.started || m.listen_fd < 0) return;
  m.epfd = ::epoll_create1(EPOLL_CLOEXEC);
  m.wakefd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  for (int fd : {m.listen_fd, m.wakefd}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    ::epoll_ctl(m.epfd, EPOLL_CTL_ADD, fd, &ev);
  }
  m.router.set_serving(m.listen_fd);
  m.started = true;
  for (std::size_t i = 0; i < std::max<std::size_t>(1, m.opts.threads); ++i) {
    m.workers.emplace_back([&m] { m.run_worker(); });
  }
  m.front = std::thread([&m] { m.run_front(); });
}

void HttpFront::stop() {
  auto& m = *impl_;
  if (m.started) {
    m.stopping = true;
    m.router.set_serving(INVALID_SOCKET);
    m.wake();
    m.front.join();
    {
      std::lock_guard lock(m.mu);
      m.pool_stop = true;
    }
    m.cv.notify_all();
    for (auto& t : m.workers) t.join();
    m.workers.clear();
    for (auto& c : m.jobs) m.close_conn(c->fd);
    for (auto& c : m.returned) m.close_conn(c->fd);
    m.jobs.clear();
    m.returned.clear();
    ::close(m.epfd);
    ::close(m.wakefd);
    m.started = false;
  }
  if (m.listen_fd >= 0) {
    ::close(m.listen_fd);
    m.listen_fd = -1;
  }
}

FrontStats HttpFront::stats() const {
  const auto& m = *impl_;
  return FrontStats{m.accepted.load(), m.requests.load(), m.timed_out.load(), m.evicted.load(),
                    m.open.load()};
}

}  // namespace trading_heal::exporter
