// When a connection of the HTTP server must have sent its request head, and what it gets when
// it has not (pure: the time is given; HttpServer reads it from its Clock).
//
// A head must be complete within `header` of the connection's accept, or of its previous answer
// on a kept-alive connection, however it trickles in: an absolute deadline. A kept-alive
// connection must also start its next request within `idle`. Late: a connection that sent
// nothing is closed quietly, one that sent part of a head is answered 408.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>

#include "trading_heal/common/clock.hpp"

namespace trading_heal::exporter {

struct HeadTimeouts {
  std::chrono::milliseconds header{5000};
  std::chrono::milliseconds idle{5000};
};

struct HeadDeadlines {
  common::MonoTime first_byte;  // kept-alive: the next request begun (after an answer only)
  common::MonoTime complete;    // the whole head
};

// The deadlines of a head awaited from `since`: the accept (`first`) or the previous answer.
HeadDeadlines head_deadlines(common::MonoTime since, bool first, const HeadTimeouts& t);

// At `now`, with `received` bytes of the head: nullopt (still in time; the next deadline is
// next_head_deadline()), 0 (close quietly) or 408.
std::optional<int> late_head(const HeadDeadlines& d, common::MonoTime now, std::size_t received);

// The deadline to wait for next: the first byte's while none came, then the whole head's.
common::MonoTime next_head_deadline(const HeadDeadlines& d, std::size_t received);

}  // namespace trading_heal::exporter
