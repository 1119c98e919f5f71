// Logging with spdlog to stderr, journald-friendly: when JOURNAL_STREAM is set journald adds the
// time, so lines carry a <N> syslog priority prefix instead of a timestamp.
#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace trading_heal::common {

// Creates the default logger named `component` at `level` (trace..off; "warning" = warn).
std::shared_ptr<spdlog::logger> init_logging(const std::string& component,
                                             const std::string& level);

}  // namespace trading_heal::common
