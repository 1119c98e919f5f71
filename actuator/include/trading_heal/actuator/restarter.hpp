// Carrying out one RestartDecision: pre-restart hook, reset-failed when needed, the restart,
// verification (active again with a new MainPID), post-restart hook. Blocking: runs on the
// restart worker thread. Not thread-safe (it owns a UnitManager).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "trading_heal/actuator/engine.hpp"
#include "trading_heal/actuator/systemd.hpp"

namespace trading_heal::actuator {

struct RestartOptions {
  bool dry_run = false;
  std::string pre_hook;  // argv as one blank-separated string; empty = none
  std::string post_hook;
  std::chrono::milliseconds hook_timeout{10000};
  std::chrono::milliseconds job_timeout{30000};     // systemd's restart job
  std::chrono::milliseconds verify_timeout{30000};  // active with a new MainPID
  std::chrono::milliseconds verify_step{100};
};

class Restarter {
 public:
  Restarter(std::unique_ptr<UnitManager> units, RestartOptions opts);
  RestartResult run(const RestartDecision& d);
  UnitManager& units() { return *units_; }

 private:
  // Resets the unit first when it failed (or `d` asks), and once more if systemd refused the
  // restart for its own start limit; `reset` says whether it did.
  tl::expected<void, std::string> restart(const RestartDecision& d, bool failed, bool& reset);
  // Waits (verify_timeout) for the unit active with a MainPID other than `old_pid`.
  tl::expected<std::uint32_t, std::string> verify(const std::string& unit, std::uint32_t old_pid);
  std::unique_ptr<UnitManager> units_;
  RestartOptions opts_;
};

}  // namespace trading_heal::actuator
