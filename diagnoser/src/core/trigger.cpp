#include "trading_heal/diagnoser/trigger.hpp"

namespace trading_heal::diagnoser {

bool Trigger::on_report(const proto::HealthReport& r) {
  using proto::Verdict;
  if (r.verdict == Verdict::kHealthy || r.verdict == Verdict::kStopped ||
      r.consecutive_failures == 0) {
    fired_[r.agent] = false;
    return false;
  }
  if (r.verdict != Verdict::kDown && r.verdict != Verdict::kStalled) return false;
  if (static_cast<long long>(r.consecutive_failures) < after_) return false;
  bool& fired = fired_[r.agent];
  if (fired) return false;
  fired = true;
  return true;
}

bool Trigger::fired(const std::string& agent) const {
  auto it = fired_.find(agent);
  return it != fired_.end() && it->second;
}

}  // namespace trading_heal::diagnoser
