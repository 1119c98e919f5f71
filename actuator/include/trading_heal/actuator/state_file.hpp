// The actuator's state file: read whole, written atomically (temp file, fsync, rename, fsync
// of the directory) so a crash leaves either the old or the new state, never a torn one.
#pragma once

#include <optional>
#include <string>

#include <tl/expected.hpp>

namespace trading_heal::actuator {

// nullopt when the file does not exist.
tl::expected<std::optional<std::string>, std::string> read_state_file(const std::string& path);
tl::expected<void, std::string> write_state_file(const std::string& path, const std::string& text);
// Moves a corrupt file aside (path.corrupt-<suffix>) so it can be inspected; returns the name.
std::string quarantine_state_file(const std::string& path, const std::string& suffix);

}  // namespace trading_heal::actuator
