// The core's units that are not the incident machine itself: operator commands, status views,
// persistence. Each works on the model; the Engine calls them.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

#include "step.hpp"

namespace trading_heal::actuator {

namespace commands {
// status, pause, resume (commands.cpp).
CommandResult handle(Model& m, const proto::Command& c, Now now);
// A pause whose expiry has come ends by itself.
void expire_pause(Step& s, AgentState& a);
}  // namespace commands

namespace status {
// The `agent_state` event (the PUB socket's STATE) and the /status JSON (status.cpp).
proto::Event agent_state(const Model& m, const AgentState& a, Now now);
nlohmann::json to_json(const Model& m, Now now);
// An open global incident as both views show it (id, cause, stage, canary, members); null when
// none is open.
nlohmann::json global_incident_json(const GlobalIncident& gi);
}  // namespace status

namespace persistence {
// The state file's JSON, version 1 (persistence.cpp): restart history, pause flags, open
// incidents, times as epoch seconds.
nlohmann::json save(const Model& m, Now now);
// Replaces the persisted parts of `m`; on error nothing is changed.
tl::expected<void, std::string> load(Model& m, const nlohmann::json& j, Now now);
}  // namespace persistence

}  // namespace trading_heal::actuator
