// The fixture of the end-to-end programs: each test starts from a clean fleet, gets its own
// deployment name and start time, and removes its deployment at the end (printing the audit and
// the daemons' journal when it failed).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "system.hpp"

namespace trading_heal::test {

class SystemTest : public ::testing::Test {
 protected:
  explicit SystemTest(std::string prefix) : prefix_(std::move(prefix)) {}

  void SetUp() override;
  void TearDown() override;

  bool deploy(const std::map<std::string, std::string>& settings = {}) {
    return sys_.deploy(name_, settings);
  }
  // Audit events of `agent` with `action` since this test began.
  std::vector<nlohmann::json> events(const std::string& agent, const std::string& action) {
    return sys_.events(agent, action, since_);
  }
  bool has_event(const std::string& agent, const std::string& action) {
    return !events(agent, action).empty();
  }
  static double event_ts(const nlohmann::json& e) {
    return parse_ts(e.value("ts", "")).value_or(0);
  }

  System sys_;
  std::string name_;
  double since_ = 0;

 private:
  std::string prefix_;
};

}  // namespace trading_heal::test
