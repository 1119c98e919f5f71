// msgpack encoding and bounded, exception-free decoding of the envelope and every body kind.
#include "trading_heal/proto/codec.hpp"

#include <cmath>
#include <limits>
#include <optional>

#include <msgpack.hpp>

#include "schema.hpp"

namespace trading_heal::proto {
namespace {

using detail::Need;
using Packer = msgpack::packer<msgpack::sbuffer>;

// ---- encoding -------------------------------------------------------------------------------

void pack_value(Packer& p, const std::string& s) { p.pack(s); }
void pack_value(Packer& p, bool b) { p.pack(b); }
void pack_value(Packer& p, std::uint32_t u) { p.pack(u); }
void pack_value(Packer& p, std::uint64_t u) { p.pack(u); }
void pack_value(Packer& p, std::int64_t i) { p.pack(i); }
void pack_value(Packer& p, double d) { p.pack(d); }
void pack_value(Packer& p, const Value& v) {
  std::visit([&](const auto& x) { pack_value(p, x); }, v);
}
void pack_value(Packer& p, const Fields& f) {
  p.pack_map(static_cast<std::uint32_t>(f.size()));
  for (const auto& [k, v] : f) {
    p.pack(k);
    pack_value(p, v);
  }
}
template <class T>
void pack_value(Packer& p, const std::optional<T>& o) {
  if (o) {
    pack_value(p, *o);
  } else {
    p.pack_nil();
  }
}
template <class E>
requires std::is_enum_v<E>
void pack_value(Packer& p, E e) {
  auto s = detail::EnumName<E>::str(e);
  p.pack_str(static_cast<std::uint32_t>(s.size()));
  p.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

template <class B>
void pack_body(Packer& p, const B& body) {
  std::uint32_t n = 0;
  detail::visit_fields(body, [&](const char*, const auto&, Need) { ++n; });
  p.pack_map(n);
  detail::visit_fields(body, [&](const char* key, const auto& value, Need) {
    p.pack(key);
    pack_value(p, value);
  });
}

// ---- decoding -------------------------------------------------------------------------------

using Err = std::optional<DecodeError>;

Err fail(Reject r, std::string detail) { return DecodeError{r, std::move(detail)}; }

Err read_value(const msgpack::object& o, std::string& out) {
  if (o.type != msgpack::type::STR) return fail(Reject::kWrongType, "expected a string");
  std::string_view s(o.via.str.ptr, o.via.str.size);
  if (!is_valid_utf8(s)) return fail(Reject::kBadValue, "invalid UTF-8");
  out.assign(s);
  return std::nullopt;
}

Err read_value(const msgpack::object& o, bool& out) {
  if (o.type != msgpack::type::BOOLEAN) return fail(Reject::kWrongType, "expected a boolean");
  out = o.via.boolean;
  return std::nullopt;
}

template <class U>
requires std::is_unsigned_v<U> &&(!std::is_same_v<U, bool>)Err
    read_value(const msgpack::object& o, U& out) {
  if (o.type == msgpack::type::NEGATIVE_INTEGER) {
    return fail(Reject::kBadValue, "negative value for an unsigned field");
  }
  if (o.type != msgpack::type::POSITIVE_INTEGER) {
    return fail(Reject::kWrongType, "expected an unsigned integer");
  }
  if (o.via.u64 > std::numeric_limits<U>::max()) return fail(Reject::kBadValue, "out of range");
  out = static_cast<U>(o.via.u64);
  return std::nullopt;
}

Err read_value(const msgpack::object& o, std::int64_t& out) {
  if (o.type == msgpack::type::NEGATIVE_INTEGER) {
    out = o.via.i64;
    return std::nullopt;
  }
  if (o.type != msgpack::type::POSITIVE_INTEGER) {
    return fail(Reject::kWrongType, "expected an integer");
  }
  if (o.via.u64 > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return fail(Reject::kBadValue, "out of range");
  }
  out = static_cast<std::int64_t>(o.via.u64);
  return std::nullopt;
}

Err read_value(const msgpack::object& o, double& out) {
  switch (o.type) {
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      out = o.via.f64;
      break;
    case msgpack::type::POSITIVE_INTEGER:
      out = static_cast<double>(o.via.u64);
      break;
    case msgpack::type::NEGATIVE_INTEGER:
      out = static_cast<double>(o.via.i64);
      break;
    default:
      return fail(Reject::kWrongType, "expected a number");
  }
  if (!std::isfinite(out)) return fail(Reject::kBadValue, "not a finite number");
  return std::nullopt;
}

Err read_value(const msgpack::object& o, Value& out) {
  switch (o.type) {
    case msgpack::type::BOOLEAN:
      out = o.via.boolean;
      return std::nullopt;
    case msgpack::type::POSITIVE_INTEGER:
    case msgpack::type::NEGATIVE_INTEGER: {
      std::int64_t i = 0;
      if (auto e = read_value(o, i)) return e;
      out = i;
      return std::nullopt;
    }
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: {
      double d = 0;
      if (auto e = read_value(o, d)) return e;
      out = d;
      return std::nullopt;
    }
    case msgpack::type::STR: {
      std::string s;
      if (auto e = read_value(o, s)) return e;
      out = std::move(s);
      return std::nullopt;
    }
    default:
      return fail(Reject::kWrongType, "expected a scalar");
  }
}

Err read_value(const msgpack::object& o, Fields& out) {
  if (o.type != msgpack::type::MAP) return fail(Reject::kWrongType, "expected a map");
  out.clear();
  for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
    const auto& kv = o.via.map.ptr[i];
    std::string key;
    if (auto e = read_value(kv.key, key)) return e;
    Value v;
    if (auto e = read_value(kv.val, v)) {
      e->detail = key + ": " + e->detail;
      return e;
    }
    out.emplace(std::move(key), std::move(v));
  }
  return std::nullopt;
}

template <class T>
Err read_value(const msgpack::object& o, std::optional<T>& out) {
  if (o.type == msgpack::type::NIL) {
    out.reset();
    return std::nullopt;
  }
  T v{};
  if (auto e = read_value(o, v)) return e;
  out = std::move(v);
  return std::nullopt;
}

template <class E>
requires std::is_enum_v<E> Err read_value(const msgpack::object& o, E& out) {
  if (o.type != msgpack::type::STR) return fail(Reject::kWrongType, "expected a string");
  std::string_view s(o.via.str.ptr, o.via.str.size);
  auto e = detail::EnumName<E>::parse(s);
  if (!e) {
    return fail(Reject::kBadValue, "unknown value \"" + sanitize_utf8(s.substr(0, 64)) + "\"");
  }
  out = *e;
  return std::nullopt;
}

const msgpack::object* find(const msgpack::object& map, std::string_view key) {
  for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
    const auto& k = map.via.map.ptr[i].key;
    if (k.type == msgpack::type::STR && std::string_view(k.via.str.ptr, k.via.str.size) == key) {
      return &map.via.map.ptr[i].val;
    }
  }
  return nullptr;
}

// Walks a body's field list, filling it from `map`. Unknown keys are ignored (forward
// compatibility); the first problem found is returned.
template <class B>
Err read_body(const msgpack::object& map, B& body) {
  if (map.type != msgpack::type::MAP) return fail(Reject::kNotAMap, "body is not a map");
  Err err;
  detail::visit_fields(body, [&](const char* key, auto& value, Need need) {
    if (err) return;
    const msgpack::object* o = find(map, key);
    if (o == nullptr) {
      if (need == Need::kRequired) err = fail(Reject::kMissingField, std::string("body.") + key);
      return;
    }
    if (auto e = read_value(*o, value)) {
      e->detail = std::string("body.") + key + ": " + e->detail;
      err = std::move(e);
    }
  });
  return err;
}

template <class T>
Err read_envelope_field(const msgpack::object& map, const char* key, T& out) {
  const msgpack::object* o = find(map, key);
  if (o == nullptr) return fail(Reject::kMissingField, key);
  if (auto e = read_value(*o, out)) {
    e->detail = std::string(key) + ": " + e->detail;
    return e;
  }
  return std::nullopt;
}

Err read_message(const msgpack::object& root, Message& msg) {
  if (root.type != msgpack::type::MAP) return fail(Reject::kNotAMap, "envelope is not a map");
  Envelope& env = msg.env;
  if (auto e = read_envelope_field(root, "v", env.version)) return e;
  if (env.version != kProtocolVersion) {
    return fail(Reject::kBadVersion, "version " + std::to_string(env.version) +
                                         ", this build speaks " + std::to_string(kProtocolVersion));
  }
  std::string kind;
  if (auto e = read_envelope_field(root, "kind", kind)) return e;
  auto k = kind_from_string(kind);
  if (!k) return fail(Reject::kUnknownKind, "kind \"" + kind.substr(0, 64) + "\"");
  env.kind = *k;
  if (auto e = read_envelope_field(root, "src", env.source)) return e;
  if (auto e = read_envelope_field(root, "boot", env.boot_id)) return e;
  if (auto e = read_envelope_field(root, "seq", env.seq)) return e;
  if (auto e = read_envelope_field(root, "ts", env.ts)) return e;
  if (find(root, "first") != nullptr) {
    if (auto e = read_envelope_field(root, "first", env.first_held)) return e;
  }
  const msgpack::object* body = find(root, "body");
  if (body == nullptr) return fail(Reject::kMissingField, "body");
  switch (env.kind) {
    case Kind::kHealth:
      msg.body = HealthReport{};
      break;
    case Kind::kHeartbeat:
      msg.body = Heartbeat{};
      break;
    case Kind::kDiagnosis:
      msg.body = Diagnosis{};
      break;
    case Kind::kEvent:
      msg.body = Event{};
      break;
    case Kind::kCommand:
      msg.body = Command{};
      break;
    case Kind::kAck:
      msg.body = Ack{};
      break;
  }
  return std::visit([&](auto& b) { return read_body(*body, b); }, msg.body);
}

}  // namespace

std::string encode(const Message& msg) {
  msgpack::sbuffer buf;
  Packer p(buf);
  p.pack_map(msg.env.first_held ? 8 : 7);
  p.pack("v");
  p.pack(msg.env.version);
  p.pack("kind");
  p.pack(std::string(to_string(kind_of(msg.body))));
  p.pack("src");
  p.pack(msg.env.source);
  p.pack("boot");
  p.pack(msg.env.boot_id);
  p.pack("seq");
  p.pack(msg.env.seq);
  p.pack("ts");
  p.pack(msg.env.ts);
  if (msg.env.first_held) {
    p.pack("first");
    p.pack(true);
  }
  p.pack("body");
  std::visit([&](const auto& b) { pack_body(p, b); }, msg.body);
  return std::string(buf.data(), buf.size());
}

tl::expected<Message, DecodeError> decode(std::string_view bytes, const Limits& limits) {
  if (bytes.size() > limits.max_bytes) {
    return tl::unexpected(DecodeError{
        Reject::kOversized,
        std::to_string(bytes.size()) + " bytes, limit " + std::to_string(limits.max_bytes)});
  }
  if (bytes.empty()) return tl::unexpected(DecodeError{Reject::kMalformed, "empty message"});
  const msgpack::unpack_limit unpack_limits(limits.max_array, limits.max_map, limits.max_str,
                                            limits.max_bin, limits.max_ext, limits.max_depth);
  msgpack::object_handle handle;
  std::size_t offset = 0;
  try {
    handle = msgpack::unpack(bytes.data(), bytes.size(), offset, nullptr, nullptr, unpack_limits);
  } catch (const msgpack::size_overflow& e) {  // array/map/str/bin/ext/depth over the limits
    return tl::unexpected(DecodeError{Reject::kLimitExceeded, e.what()});
  } catch (const msgpack::insufficient_bytes&) {
    return tl::unexpected(DecodeError{Reject::kMalformed, "truncated msgpack"});
  } catch (const std::bad_alloc&) {
    return tl::unexpected(DecodeError{Reject::kLimitExceeded, "allocation failed"});
  } catch (const std::exception& e) {
    return tl::unexpected(DecodeError{Reject::kMalformed, e.what()});
  }
  if (offset != bytes.size()) {
    return tl::unexpected(
        DecodeError{Reject::kMalformed, std::to_string(bytes.size() - offset) + " trailing bytes"});
  }
  Message msg;
  if (auto e = read_message(handle.get(), msg)) return tl::unexpected(std::move(*e));
  return msg;
}

bool is_valid_utf8(std::string_view in) {
  std::size_t i = 0;
  const std::size_t n = in.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(in[i]);
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(in[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

std::string sanitize_utf8(std::string_view in) {
  if (is_valid_utf8(in)) return std::string(in);
  std::string out;
  out.reserve(in.size());
  std::size_t i = 0;
  while (i < in.size()) {
    // Take the longest valid sequence starting here (1..4 bytes), else emit U+FFFD.
    bool took = false;
    for (std::size_t len = 1; len <= 4 && i + len <= in.size(); ++len) {
      auto piece = in.substr(i, len);
      const auto c = static_cast<unsigned char>(piece[0]);
      const std::size_t want = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
      if (len == want && is_valid_utf8(piece)) {
        out.append(piece);
        i += len;
        took = true;
        break;
      }
    }
    if (!took) {
      out.append("\xEF\xBF\xBD");
      ++i;
    }
  }
  return out;
}

}  // namespace trading_heal::proto
