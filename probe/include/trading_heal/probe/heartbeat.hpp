// The agents' heartbeat files: `time.time()` as text, epoch seconds.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace trading_heal::probe {

// Pure: "1785000000.25" (optional surrounding whitespace) -> 1785000000.25; garbage -> nullopt.
std::optional<double> parse_heartbeat(std::string_view text);
// Reads and parses the file; nullopt when missing or unreadable.
std::optional<double> read_heartbeat(const std::string& path);

}  // namespace trading_heal::probe
