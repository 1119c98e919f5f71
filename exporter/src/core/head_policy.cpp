#include "trading_heal/exporter/head_policy.hpp"

#include <algorithm>

namespace trading_heal::exporter {

HeadDeadlines head_deadlines(common::MonoTime since, bool first, const HeadTimeouts& t) {
  const common::MonoTime complete = since + t.header;
  return {first ? complete : std::min(complete, since + t.idle), complete};
}

common::MonoTime next_head_deadline(const HeadDeadlines& d, std::size_t received) {
  return received == 0 ? d.first_byte : d.complete;
}

std::optional<int> late_head(const HeadDeadlines& d, common::MonoTime now, std::size_t received) {
  if (now < next_head_deadline(d, received)) return std::nullopt;
  return received == 0 ? 0 : 408;
}

}  // namespace trading_heal::exporter
