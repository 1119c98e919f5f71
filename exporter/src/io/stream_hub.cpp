#include "trading_heal/exporter/stream_hub.hpp"

namespace trading_heal::exporter {

void StreamHub::publish(std::string line) {
  {
    std::lock_guard lock(mu_);
    if (clients_ == 0) {  // nobody listens: keep nothing, just count
      ring_.clear();
      ++next_;
      return;
    }
    ring_.push_back(std::move(line));
    if (ring_.size() > capacity_) ring_.pop_front();
    ++next_;
  }
  cv_.notify_all();
}

bool StreamHub::subscribe(std::uint64_t* cursor) {
  std::lock_guard lock(mu_);
  if (closed_ || clients_ >= max_clients_) return false;
  ++clients_;
  *cursor = next_;
  return true;
}

void StreamHub::unsubscribe() {
  std::lock_guard lock(mu_);
  if (clients_ > 0) --clients_;
}

std::vector<std::string> StreamHub::wait(std::uint64_t& cursor, std::chrono::milliseconds timeout,
                                         std::uint64_t* missed) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return closed_ || next_ > cursor; });
  std::vector<std::string> out;
  const std::uint64_t oldest = next_ - ring_.size();
  if (missed != nullptr) *missed = cursor < oldest ? oldest - cursor : 0;
  if (cursor < oldest) cursor = oldest;
  for (std::uint64_t s = cursor; s < next_; ++s) out.push_back(ring_[s - oldest]);
  cursor = next_;
  return out;
}

void StreamHub::close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

bool StreamHub::closed() const {
  std::lock_guard lock(mu_);
  return closed_;
}

std::size_t StreamHub::clients() const {
  std::lock_guard lock(mu_);
  return clients_;
}

}  // namespace trading_heal::exporter
