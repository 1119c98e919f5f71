// A binary's main around its real one: whatever escapes is said on stderr with the program's
// name (exit 1), not a bare std::terminate.
#pragma once

#include <cstdio>
#include <exception>

namespace trading_heal::common {

template <class Run>
int guarded_main(const char* program, Run&& run) noexcept {
  try {
    return run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
  } catch (...) {
    std::fprintf(stderr, "%s: unknown error\n", program);
  }
  return 1;
}

}  // namespace trading_heal::common
