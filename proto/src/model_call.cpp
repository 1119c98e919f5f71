#include "trading_heal/proto/model_call.hpp"

#include <nlohmann/json.hpp>

#include "trading_heal/proto/json.hpp"

namespace trading_heal::proto {
namespace {

using nlohmann::json;

constexpr int kVersion = 1;

std::optional<json> object_of(const std::string& text, const char* kind) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  const auto v = j.find("v");
  const auto k = j.find("kind");
  const auto id = j.find("id");
  if (v == j.end() || !v->is_number_integer() || *v != kVersion || k == j.end() ||
      !k->is_string() || *k != kind || id == j.end() || !id->is_number_unsigned()) {
    return std::nullopt;
  }
  return j;
}

// The string at `key` into `out`; false when present but not a string, or absent and `required`.
bool text(const json& j, const char* key, std::string& out, bool required) {
  const auto it = j.find(key);
  if (it == j.end()) return !required;
  if (!it->is_string()) return false;
  out = it->get<std::string>();
  return true;
}

}  // namespace

std::string encode(const ModelRequest& r) {
  return to_json_line({{"v", kVersion},
                       {"kind", "model_request"},
                       {"id", r.id},
                       {"system", r.system},
                       {"user", r.user},
                       {"timeout_ms", r.timeout_ms}});
}

std::string encode(const ModelReply& r) {
  json j{{"v", kVersion}, {"kind", "model_reply"}, {"id", r.id}, {"ok", r.ok}};
  if (r.ok) {
    j["content"] = r.content;
    j["model"] = r.model;
  } else {
    j["reason"] = r.reason;
    j["detail"] = r.detail;
  }
  j["latency_seconds"] = r.latency_seconds;
  return to_json_line(j);
}

std::optional<ModelRequest> decode_model_request(const std::string& text_in) {
  auto j = object_of(text_in, "model_request");
  if (!j) return std::nullopt;
  ModelRequest r;
  r.id = (*j)["id"].get<std::uint64_t>();
  if (!text(*j, "system", r.system, true) || !text(*j, "user", r.user, true)) return std::nullopt;
  const auto t = j->find("timeout_ms");
  if (t != j->end()) {
    if (!t->is_number_unsigned() || t->get<std::uint64_t>() > 3'600'000) return std::nullopt;
    r.timeout_ms = t->get<std::uint32_t>();
  }
  return r;
}

std::optional<ModelReply> decode_model_reply(const std::string& text_in) {
  auto j = object_of(text_in, "model_reply");
  if (!j) return std::nullopt;
  ModelReply r;
  r.id = (*j)["id"].get<std::uint64_t>();
  const auto ok = j->find("ok");
  if (ok == j->end() || !ok->is_boolean()) return std::nullopt;
  r.ok = ok->get<bool>();
  if (r.ok ? !text(*j, "content", r.content, true) || !text(*j, "model", r.model, false)
           : !text(*j, "reason", r.reason, true) || !text(*j, "detail", r.detail, false)) {
    return std::nullopt;
  }
  if (r.reason.empty() && !r.ok) return std::nullopt;
  const auto l = j->find("latency_seconds");
  if (l != j->end()) {
    if (!l->is_number() || !(l->get<double>() >= 0)) return std::nullopt;
    r.latency_seconds = l->get<double>();
  }
  return r;
}

ModelReply model_failure(std::uint64_t id, std::string reason, std::string detail) {
  ModelReply r;
  r.id = id;
  r.reason = std::move(reason);
  r.detail = std::move(detail);
  return r;
}

std::string unanswered_reply(const std::string& request_text, const std::string& reason,
                             const std::string& detail) {
  const auto req = decode_model_request(request_text);
  return encode(model_failure(req ? req->id : 0, reason, detail));
}

}  // namespace trading_heal::proto
