// JSON views of messages: one flat object per message (envelope fields `v kind source boot_id
// seq ts` next to the body's fields), as printed by trading-heal-tap and `--once` modes.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "trading_heal/proto/messages.hpp"

namespace trading_heal::proto {

nlohmann::json to_json(const Message& msg);
nlohmann::json body_to_json(const Body& body);
nlohmann::json fields_to_json(const Fields& fields);
// One line of JSON, never throwing on odd bytes (invalid UTF-8 is replaced).
std::string to_json_line(const nlohmann::json& j);

}  // namespace trading_heal::proto
