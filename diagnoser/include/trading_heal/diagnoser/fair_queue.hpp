// FairQueue: the centre's queue of model requests, shared fairly among the hosts asking. Pure:
// no threads, clocks or I/O (the ModelServer holds it under its lock).
//
// - Service is round robin over the hosts that have requests queued: a host with a burst of
//   incidents does not make another host's one request wait behind all of them.
// - The queue is bounded. When it is full, a host holding fewer requests than the host holding
//   the most still gets a place: that host's newest request gives it up (its asker is told
//   `busy` at once, as when the queue is full). A host that already holds as many as any other
//   is refused. So one host's burst can no longer take every place from the others.
#pragma once

#include <cstddef>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>

namespace trading_heal::diagnoser {

template <class T>
class FairQueue {
 public:
  // What did not get a place: the item pushed, or another host's newest item evicted for it.
  struct Turned {
    std::string host;
    T item;
  };

  // Queues `item` for `host` when fewer than `limit` items are queued; when not, as above.
  std::optional<Turned> push(const std::string& host, T item, std::size_t limit) {
    if (size_ >= limit) {
      auto largest = largest_other(host);
      const std::size_t mine = count(host);
      if (largest == queues_.end() || largest->second.size() < mine + 2) {
        return Turned{host, std::move(item)};
      }
      // It holds two or more: it keeps at least one, and its turn.
      Turned out{largest->first, std::move(largest->second.back())};
      largest->second.pop_back();
      --size_;
      admit(host, std::move(item));
      return out;
    }
    admit(host, std::move(item));
    return std::nullopt;
  }

  // The next item in round-robin order over the hosts, or nothing.
  std::optional<Turned> pop() {
    if (order_.empty()) return std::nullopt;
    const std::string host = order_.front();
    order_.pop_front();
    auto it = queues_.find(host);
    Turned out{host, std::move(it->second.front())};
    it->second.pop_front();
    --size_;
    if (it->second.empty()) {
      queues_.erase(it);
    } else {
      order_.push_back(host);
    }
    return out;
  }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::size_t count(const std::string& host) const {
    auto it = queues_.find(host);
    return it == queues_.end() ? 0 : it->second.size();
  }

 private:
  using Queues = std::map<std::string, std::deque<T>>;

  void admit(const std::string& host, T item) {
    auto [it, added] = queues_.try_emplace(host);
    if (added) order_.push_back(host);
    it->second.push_back(std::move(item));
    ++size_;
  }
  // The host other than `host` holding the most (the first such in name order on a tie).
  typename Queues::iterator largest_other(const std::string& host) {
    auto best = queues_.end();
    for (auto it = queues_.begin(); it != queues_.end(); ++it) {
      if (it->first != host && (best == queues_.end() || it->second.size() > best->second.size())) {
        best = it;
      }
    }
    return best;
  }

  Queues queues_;
  std::deque<std::string> order_;  // hosts with items, in turn
  std::size_t size_ = 0;
};

}  // namespace trading_heal::diagnoser
