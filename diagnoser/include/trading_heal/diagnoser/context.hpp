// What the diagnoser knows about an incident besides the journal: the probe's facts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "trading_heal/common/config.hpp"
#include "trading_heal/proto/messages.hpp"

namespace trading_heal::diagnoser {

struct IncidentContext {
  std::string agent;  // instance, from configuration (never from a message)
  std::string unit;   // from configuration
  std::string symbol;
  std::string profile;
  proto::Verdict verdict = proto::Verdict::kUnknown;
  std::uint32_t consecutive_failures = 0;
  std::optional<double> decision_age_seconds;
  std::string age_source = "none";
  std::uint64_t rss_bytes = 0;
  double cpu_ratio = 0;
  std::uint32_t n_restarts = 0;
  std::string detail;  // the probe's summary of failed checks
};

// The context for a configured agent, with the probe's facts when a report is at hand. The
// unit and names always come from `spec`, whatever the report says.
IncidentContext make_context(const common::AgentSpec& spec, const proto::HealthReport* report);

}  // namespace trading_heal::diagnoser
