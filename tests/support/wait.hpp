// Waiting for a condition in tests, instead of sleeping.
#pragma once

#include <chrono>
#include <functional>

namespace trading_heal::test {

// Polls `cond` every `step` until it is true (returns true) or `timeout` passes (returns false).
bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout,
                std::chrono::milliseconds step = std::chrono::milliseconds(50));

}  // namespace trading_heal::test
