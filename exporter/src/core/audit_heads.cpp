#include "trading_heal/exporter/audit_heads.hpp"

namespace trading_heal::exporter {

HeadCheck check_recorded_heads(const std::vector<RecordedHead>& newest_first,
                               const std::unordered_set<std::string>& line_hashes,
                               const std::string& rotated_boundary) {
  HeadCheck c;
  for (const auto& h : newest_first) {
    if (h.unit.rfind("trading-heal-exporter@", 0) != 0) {
      ++c.ignored;
      continue;
    }
    if (h.hash == rotated_boundary) {
      c.reached_rotated = true;
      break;
    }
    if (line_hashes.count(h.hash) != 0) {
      ++c.checked;
    } else {
      c.missing.push_back(h);
    }
  }
  return c;
}

}  // namespace trading_heal::exporter
