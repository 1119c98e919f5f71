#include "trading_heal/diagnoser/context.hpp"

namespace trading_heal::diagnoser {

IncidentContext make_context(const common::AgentSpec& spec, const proto::HealthReport* report) {
  IncidentContext c;
  c.agent = spec.instance;
  c.unit = spec.unit;
  c.symbol = spec.symbol;
  c.profile = spec.profile;
  if (report != nullptr) {
    c.verdict = report->verdict;
    c.consecutive_failures = report->consecutive_failures;
    c.decision_age_seconds = report->decision_age_seconds;
    c.age_source = std::string(proto::to_string(report->age_source));
    c.rss_bytes = report->rss_bytes;
    c.cpu_ratio = report->cpu_ratio;
    c.n_restarts = report->n_restarts;
    c.detail = report->detail;
  }
  return c;
}

}  // namespace trading_heal::diagnoser
