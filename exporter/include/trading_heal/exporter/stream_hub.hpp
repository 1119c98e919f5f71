// Fan-out of committed audit lines to GET /audit/stream clients (Server-Sent Events).
// Thread-safe: the loop thread publishes, HTTP threads wait. A bounded ring: a client that
// falls more than `capacity` lines behind skips ahead (and is told how many it missed), so a slow
// client never holds memory or the loop back. The number of clients is capped, because each
// holds an HTTP worker thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace trading_heal::exporter {

class StreamHub {
 public:
  struct Limits {
    std::size_t capacity = 4096;  // lines kept for slow clients
    std::size_t max_clients = 8;
  };
  StreamHub() : StreamHub(Limits{}) {}
  explicit StreamHub(Limits limits)
      : capacity_(limits.capacity), max_clients_(limits.max_clients) {}

  void publish(std::string line);
  // Registers a client; false when max_clients are connected. The cursor starts at "now".
  bool subscribe(std::uint64_t* cursor);
  void unsubscribe();
  // Lines published after `cursor` (advanced), waiting up to `timeout` for the first one.
  // `missed` receives how many lines were skipped because the client fell behind.
  std::vector<std::string> wait(std::uint64_t& cursor, std::chrono::milliseconds timeout,
                                std::uint64_t* missed);
  // Wakes every waiting client for good (shutdown).
  void close();
  bool closed() const;
  std::size_t clients() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> ring_;
  std::uint64_t next_ = 0;  // sequence of the next published line; ring_ holds [next_-size, next_)
  std::size_t capacity_;
  std::size_t max_clients_;
  std::size_t clients_ = 0;
  bool closed_ = false;
};

}  // namespace trading_heal::exporter
