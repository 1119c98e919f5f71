// When to diagnose: once per incident, when an agent's consecutive failures reach the
// threshold. Pure; not thread-safe.
#pragma once

#include <map>
#include <string>

#include "trading_heal/proto/messages.hpp"

namespace trading_heal::diagnoser {

class Trigger {
 public:
  explicit Trigger(int diagnose_after) : after_(diagnose_after) {}
  // True when this report should start a diagnosis. An incident runs from the first failing
  // report until a HEALTHY (or cleanly STOPPED) one; it fires at most once. `>=` rather than
  // `==` so that a diagnoser started in the middle of an incident still diagnoses it once.
  // UNKNOWN neither starts nor ends an incident.
  bool on_report(const proto::HealthReport& r);
  bool fired(const std::string& agent) const;

 private:
  int after_;
  std::map<std::string, bool> fired_;
};

}  // namespace trading_heal::diagnoser
