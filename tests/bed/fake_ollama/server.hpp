// The fake Ollama's HTTP routes: the model endpoints, /api/tags, /api/version and /_fake/* control.
#pragma once

#include <httplib.h>

#include "fake_state.hpp"

namespace trading_heal::fake_ollama {

// Largest request body accepted (httplib answers 413 above it).
inline constexpr std::size_t kMaxBodyBytes = 4 * 1024 * 1024;

// Registers every route on `server`; `state` must outlive it. The handlers are thread-safe as
// long as FakeState is (they share nothing else).
void install_routes(httplib::Server& server, FakeState& state);

}  // namespace trading_heal::fake_ollama
