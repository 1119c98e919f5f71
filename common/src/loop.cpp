#include "trading_heal/common/loop.hpp"

#include <algorithm>
#include <csignal>

#include "trading_heal/common/notify.hpp"

namespace trading_heal::common {

Loop::Loop(SignalFd& signals) : signals_(signals) {
  on_fd(signals_.fd(), [this] {
    while (auto s = signals_.read()) {
      if (*s == SIGTERM || *s == SIGINT) {
        stopping_ = true;
        stop_signal_ = *s;
      } else if (auto it = signal_handlers_.find(*s); it != signal_handlers_.end()) {
        it->second();
      }
    }
  });
}

void Loop::on_readable(zmq::socket_t& socket, std::function<void()> fn) {
  items_.push_back({socket.handle(), 0, ZMQ_POLLIN, 0});
  handlers_.push_back(std::move(fn));
}

void Loop::on_fd(int fd, std::function<void()> fn) {
  items_.push_back({nullptr, fd, ZMQ_POLLIN, 0});
  handlers_.push_back(std::move(fn));
}

void Loop::remove_fd(int fd) {
  for (std::size_t i = 0; i < items_.size(); ++i) {
    if (items_[i].socket == nullptr && items_[i].fd == fd) {
      items_[i].fd = -1;  // poll(2) ignores it until compact() drops it
      items_[i].events = 0;
    }
  }
  if (!dispatching_) compact();
}

void Loop::compact() {
  for (std::size_t i = items_.size(); i-- > 0;) {
    if (items_[i].socket == nullptr && items_[i].fd == -1) {
      items_.erase(items_.begin() + static_cast<std::ptrdiff_t>(i));
      handlers_.erase(handlers_.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
}

void Loop::on_signal(int signo, std::function<void()> fn) {
  signal_handlers_[signo] = std::move(fn);
}

void Loop::on_tick(MonoTime first, std::function<MonoTime(MonoTime)> fn) {
  tick_ = std::move(fn);
  next_tick_ = first;
}

void Loop::wake_at(MonoTime t) {
  if (!next_tick_ || t < *next_tick_) next_tick_ = t;
}

int Loop::run() {
  using namespace std::chrono;
  const auto ping = watchdog_ping_interval();
  auto next_ping = steady_clock::now();
  while (!stopping_) {
    auto now = steady_clock::now();
    if (ping && now >= next_ping) {
      notify_watchdog();
      next_ping = now + *ping;
    }
    if (tick_ && next_tick_ && now >= *next_tick_) {
      next_tick_ = tick_(now);
      continue;  // re-check time and signals before sleeping
    }
    auto until = now + seconds(1);
    if (next_tick_) until = std::min(until, *next_tick_);
    if (ping) until = std::min(until, next_ping);
    auto timeout = duration_cast<milliseconds>(until - now) + milliseconds(1);
    try {
      zmq::poll(items_.data(), items_.size(), std::max(timeout, milliseconds(0)));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      throw;
    }
    // Handlers may register nothing new while running (remove_fd is deferred).
    dispatching_ = true;
    for (std::size_t i = 0; i < items_.size() && !stopping_; ++i) {
      if (items_[i].events != 0 && (items_[i].revents & ZMQ_POLLIN) != 0) handlers_[i]();
    }
    dispatching_ = false;
    compact();
  }
  return stop_signal_;
}

}  // namespace trading_heal::common
