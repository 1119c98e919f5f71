// JSON views of messages, walking the same field lists as the codec.
#include "trading_heal/proto/json.hpp"

#include "schema.hpp"
#include "trading_heal/proto/codec.hpp"

namespace trading_heal::proto {
namespace {

nlohmann::json value_json(const std::string& s) { return s; }
nlohmann::json value_json(bool b) { return b; }
nlohmann::json value_json(std::uint32_t u) { return u; }
nlohmann::json value_json(std::uint64_t u) { return u; }
nlohmann::json value_json(std::int64_t i) { return i; }
nlohmann::json value_json(double d) { return d; }
nlohmann::json value_json(const Value& v) {
  return std::visit([](const auto& x) { return value_json(x); }, v);
}
nlohmann::json value_json(const Fields& f) { return fields_to_json(f); }
template <class T>
nlohmann::json value_json(const std::optional<T>& o) {
  return o ? value_json(*o) : nlohmann::json(nullptr);
}
template <class E>
requires std::is_enum_v<E> nlohmann::json value_json(E e) {
  return std::string(detail::EnumName<E>::str(e));
}

}  // namespace

nlohmann::json fields_to_json(const Fields& fields) {
  auto j = nlohmann::json::object();
  for (const auto& [k, v] : fields) j[k] = value_json(v);
  return j;
}

nlohmann::json body_to_json(const Body& body) {
  auto j = nlohmann::json::object();
  std::visit(
      [&](const auto& b) {
        detail::visit_fields(b, [&](const char* key, const auto& value, detail::Need) {
          j[key] = value_json(value);
        });
      },
      body);
  return j;
}

nlohmann::json to_json(const Message& msg) {
  nlohmann::json j = nlohmann::json::object();
  j["v"] = msg.env.version;
  j["kind"] = std::string(to_string(kind_of(msg.body)));
  j["source"] = msg.env.source;
  j["boot_id"] = msg.env.boot_id;
  j["seq"] = msg.env.seq;
  j["ts"] = msg.env.ts;
  // Body fields sit beside the envelope's; a body field never shadows an envelope field.
  const nlohmann::json body = body_to_json(msg.body);
  for (auto it = body.cbegin(); it != body.cend(); ++it) {
    if (!j.contains(it.key())) j[it.key()] = it.value();
  }
  return j;
}

std::string to_json_line(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace trading_heal::proto
