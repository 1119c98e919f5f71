// Round trips of every message kind, a table of malformed inputs, and golden wire bytes.
#include <gtest/gtest.h>

#include <msgpack.hpp>

#include <fstream>
#include <sstream>

#include "trading_heal/proto/codec.hpp"
#include "trading_heal/proto/json.hpp"

namespace trading_heal::proto {
namespace {

HealthReport sample_health() {
  HealthReport h;
  h.agent = "BTC_USDT_conservative";
  h.unit = "crypto-agent@BTC_USDT_conservative.service";
  h.symbol = "BTC-USDT";
  h.profile = "conservative";
  h.verdict = Verdict::kStalled;
  h.consecutive_failures = 3;
  h.decision_age_seconds = 1500.5;
  h.age_source = AgeSource::kDb;
  h.heartbeat_age_seconds = std::nullopt;
  h.active_state = "active";
  h.sub_state = "running";
  h.result = "success";
  h.main_pid = 4242;
  h.rss_bytes = 123456789;
  h.cpu_ratio = 0.25;
  h.n_restarts = 7;
  h.active_enter_ts = 1785000000.5;
  h.unit_ok = true;
  h.process_ok = true;
  h.age_ok = false;
  h.detail = "no decision for 1500s (threshold 600s) — ⚠️";
  h.stall_threshold_seconds = 312.5;
  h.threshold_source = ThresholdSource::kLearned;
  return h;
}

std::vector<Body> every_kind() {
  Diagnosis d;
  d.agent = "BTC_USDT";
  d.incident = "BTC_USDT-1";
  d.cause = "DB lock on decisions table";
  d.severity = Severity::kCritical;
  d.action = DiagnosisAction::kManual;
  d.explanation = "psycopg2.OperationalError repeated";
  d.category = "db_lock";
  d.source = "llm";
  d.model = "qwen2.5-coder:7b";
  d.latency_seconds = 7.5;
  d.llm_error = "timeout";
  Event e;
  e.action = "restart";
  e.agent = "BTC_USDT";
  e.symbol = "BTC-USDT";
  e.profile = "default";
  e.success = false;
  e.detail = "restart job failed";
  e.reason = "stalled (age=1500s)";
  e.diagnosis = "DB lock";
  e.fields = {{"dry_run", true}, {"age", std::int64_t{-3}}, {"latency", 1.5}, {"s", "x"}};
  Command c{CommandVerb::kPause, "ETH_USDT", "maintenance window", 1785003600.0, "req-9"};
  Ack a{"actuator", "4f1c", 18446744073709551615ULL, false, "disk full"};
  Heartbeat hb{"probe", 99, 30.0, {{"db_reachable", false}, {"overruns", std::int64_t{2}}}};
  return {sample_health(), hb, d, e, c, a};
}

TEST(Codec, RoundTripsEveryKind) {
  std::uint64_t seq = 1;
  for (const Body& body : every_kind()) {
    const Message in = make_message("probe", "boot-abc", seq++, 1785000000.25, body);
    const std::string bytes = encode(in);
    auto out = decode(bytes);
    ASSERT_TRUE(out) << to_string(kind_of(body)) << ": " << out.error().detail;
    EXPECT_EQ(out->env.kind, kind_of(body));
    EXPECT_EQ(out->env.source, "probe");
    EXPECT_EQ(out->env.boot_id, "boot-abc");
    EXPECT_EQ(out->env.seq, in.env.seq);
    EXPECT_DOUBLE_EQ(out->env.ts, 1785000000.25);
    EXPECT_EQ(body_to_json(out->body), body_to_json(body)) << to_string(kind_of(body));
    EXPECT_EQ(encode(*out), bytes);
  }
}

TEST(Codec, FirstHeldMarkTravelsOnlyWhenSet) {
  Message in = make_message("actuator", "boot-abc", 7, 1785000000.25, Event{});
  const std::string plain = encode(in);
  in.env.first_held = true;
  const std::string marked = encode(in);
  EXPECT_NE(plain, marked);
  auto out = decode(marked);
  ASSERT_TRUE(out) << out.error().detail;
  EXPECT_TRUE(out->env.first_held);
  EXPECT_EQ(out->env.seq, 7u);
  auto back = decode(plain);
  ASSERT_TRUE(back);
  EXPECT_FALSE(back->env.first_held);
  // Not part of the JSON form (audit lines, tap): it describes the send, not the record.
  EXPECT_FALSE(to_json(*out).contains("first"));
  EXPECT_FALSE(to_json(*out).contains("first_held"));
}

TEST(Codec, JsonIsFlatWithEnvelopeFields) {
  auto j = to_json(make_message("probe", "b", 5, 10.0, sample_health()));
  EXPECT_EQ(j["kind"], "health");
  EXPECT_EQ(j["seq"], 5);
  EXPECT_EQ(j["agent"], "BTC_USDT_conservative");
  EXPECT_EQ(j["verdict"], "STALLED");
  EXPECT_EQ(j["age_source"], "db");
  EXPECT_TRUE(j["heartbeat_age_seconds"].is_null());
  EXPECT_EQ(j["decision_age_seconds"], 1500.5);
  EXPECT_EQ(j["stall_threshold_seconds"], 312.5);
  EXPECT_EQ(j["threshold_source"], "learned");
}

// --- hand-built inputs ---------------------------------------------------------------------

using Packer = msgpack::packer<msgpack::sbuffer>;

// Packs an envelope whose body is written by `body`; `skip` omits one envelope key and
// `kind`/`version` may be overridden.
template <class F>
std::string envelope(F body, std::string kind = "health", std::uint64_t version = 1,
                     const std::string& skip = "") {
  msgpack::sbuffer buf;
  Packer p(buf);
  std::vector<std::string> keys{"v", "kind", "src", "boot", "seq", "ts", "body"};
  std::erase(keys, skip);
  p.pack_map(static_cast<std::uint32_t>(keys.size()));
  for (const auto& k : keys) {
    p.pack(k);
    if (k == "v") p.pack(version);
    if (k == "kind") p.pack(kind);
    if (k == "src") p.pack("probe");
    if (k == "boot") p.pack("b");
    if (k == "seq") p.pack(1);
    if (k == "ts") p.pack(1.0);
    if (k == "body") body(p);
  }
  return std::string(buf.data(), buf.size());
}

auto health_body(const std::string& verdict_key = "verdict", const msgpack::object* = nullptr) {
  return [verdict_key](Packer& p) {
    p.pack_map(2);
    p.pack("agent");
    p.pack("BTC_USDT");
    p.pack(verdict_key);
    p.pack("HEALTHY");
  };
}

TEST(Codec, TheThresholdIsOptionalAndItsSourceChecked) {
  // A probe from before the threshold was reported: the fields are absent, not an error.
  auto old = decode(envelope(health_body()));
  ASSERT_TRUE(old) << old.error().detail;
  EXPECT_FALSE(std::get<HealthReport>(old->body).stall_threshold_seconds);
  EXPECT_EQ(std::get<HealthReport>(old->body).threshold_source, ThresholdSource::kFixed);
  auto bad = decode(envelope([](Packer& p) {
    p.pack_map(3);
    p.pack("agent");
    p.pack("BTC_USDT");
    p.pack("verdict");
    p.pack("HEALTHY");
    p.pack("threshold_source");
    p.pack("guessed");
  }));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().reason, Reject::kBadValue);
}

TEST(Codec, AcceptsMinimalBodyAndIgnoresUnknownFields) {
  auto ok = decode(envelope([](Packer& p) {
    p.pack_map(3);
    p.pack("agent");
    p.pack("BTC_USDT");
    p.pack("verdict");
    p.pack("DOWN");
    p.pack("field_from_the_future");
    p.pack_array(1);
    p.pack(1);
  }));
  ASSERT_TRUE(ok) << ok.error().detail;
  EXPECT_EQ(std::get<HealthReport>(ok->body).verdict, Verdict::kDown);
}

struct BadCase {
  const char* name;
  std::string bytes;
  Reject reason;
  const char* detail_contains;
};

std::string nested(int depth) {
  msgpack::sbuffer buf;
  Packer p(buf);
  for (int i = 0; i < depth; ++i) p.pack_array(1);
  p.pack(1);
  return std::string(buf.data(), buf.size());
}

std::vector<BadCase> bad_cases() {
  const std::string good = envelope(health_body());
  std::vector<BadCase> v;
  v.push_back({"empty", "", Reject::kMalformed, "empty"});
  v.push_back({"truncated", good.substr(0, good.size() - 3), Reject::kMalformed, "truncated"});
  v.push_back({"trailing bytes", good + "\x01", Reject::kMalformed, "trailing"});
  v.push_back({"reserved byte 0xc1", "\xc1", Reject::kMalformed, ""});
  v.push_back({"oversized", std::string(300 * 1024, 'x'), Reject::kOversized, "limit"});
  // array32 declaring 4 billion elements in 5 bytes
  v.push_back({"huge declared array", std::string("\xdd\xff\xff\xff\xff", 5),
               Reject::kLimitExceeded, "array"});
  v.push_back(
      {"huge declared map", std::string("\xdf\xff\xff\xff\xff", 5), Reject::kLimitExceeded, "map"});
  // A declared length past the data is only truncated (nothing is allocated for it); a real
  // string past the str limit is refused even though the message fits max_bytes.
  v.push_back({"huge declared str", std::string("\xdb\x7f\xff\xff\xff", 5), Reject::kMalformed,
               "truncated"});
  v.push_back({"str over the limit",
               std::string("\xdb\x00\x01\x11\x70", 5) + std::string(70000, 'a'),
               Reject::kLimitExceeded, "str"});
  v.push_back({"bin field", std::string("\xc4\x05hello", 7), Reject::kLimitExceeded, "bin"});
  v.push_back({"deep nesting", nested(50), Reject::kLimitExceeded, "depth"});
  v.push_back({"not a map", nested(1), Reject::kNotAMap, "envelope"});
  v.push_back(
      {"version 2", envelope(health_body(), "health", 2), Reject::kBadVersion, "version 2"});
  v.push_back(
      {"unknown kind", envelope(health_body(), "teleport"), Reject::kUnknownKind, "teleport"});
  v.push_back(
      {"missing seq", envelope(health_body(), "health", 1, "seq"), Reject::kMissingField, "seq"});
  v.push_back({"missing body", envelope(health_body(), "health", 1, "body"), Reject::kMissingField,
               "body"});
  v.push_back(
      {"missing verdict", envelope(health_body("verdikt")), Reject::kMissingField, "body.verdict"});
  v.push_back({"body not a map", envelope([](Packer& p) { p.pack(7); }), Reject::kNotAMap, "body"});
  v.push_back({"wrong type", envelope([](Packer& p) {
                 p.pack_map(2);
                 p.pack("agent");
                 p.pack(12);
                 p.pack("verdict");
                 p.pack("DOWN");
               }),
               Reject::kWrongType, "body.agent"});
  v.push_back({"unknown verdict", envelope([](Packer& p) {
                 p.pack_map(2);
                 p.pack("agent");
                 p.pack("A");
                 p.pack("verdict");
                 p.pack("SLEEPY");
               }),
               Reject::kBadValue, "SLEEPY"});
  v.push_back({"negative pid", envelope([](Packer& p) {
                 p.pack_map(3);
                 p.pack("agent");
                 p.pack("A");
                 p.pack("verdict");
                 p.pack("DOWN");
                 p.pack("main_pid");
                 p.pack(-1);
               }),
               Reject::kBadValue, "main_pid"});
  v.push_back({"uint32 overflow", envelope([](Packer& p) {
                 p.pack_map(3);
                 p.pack("agent");
                 p.pack("A");
                 p.pack("verdict");
                 p.pack("DOWN");
                 p.pack("main_pid");
                 p.pack(std::uint64_t{1} << 40);
               }),
               Reject::kBadValue, "out of range"});
  v.push_back({"NaN age", envelope([](Packer& p) {
                 p.pack_map(3);
                 p.pack("agent");
                 p.pack("A");
                 p.pack("verdict");
                 p.pack("DOWN");
                 p.pack("cpu_ratio");
                 p.pack(std::nan(""));
               }),
               Reject::kBadValue, "finite"});
  v.push_back({"invalid utf-8", envelope([](Packer& p) {
                 p.pack_map(2);
                 p.pack("agent");
                 p.pack(std::string("\xff\xfe"));
                 p.pack("verdict");
                 p.pack("DOWN");
               }),
               Reject::kBadValue, "UTF-8"});
  v.push_back({"nested value in fields",
               envelope(
                   [](Packer& p) {
                     p.pack_map(2);
                     p.pack("action");
                     p.pack("restart");
                     p.pack("fields");
                     p.pack_map(1);
                     p.pack("x");
                     p.pack_array(0);
                   },
                   "event"),
               Reject::kWrongType, "fields"});
  v.push_back({"ts is a string",
               [] {
                 msgpack::sbuffer buf;
                 Packer p(buf);
                 p.pack_map(7);
                 p.pack("v"), p.pack(1), p.pack("kind"), p.pack("ack"), p.pack("src");
                 p.pack("x"), p.pack("boot"), p.pack("b"), p.pack("seq"), p.pack(1);
                 p.pack("ts"), p.pack("yesterday"), p.pack("body"), p.pack_map(0);
                 return std::string(buf.data(), buf.size());
               }(),
               Reject::kWrongType, "ts"});
  return v;
}

TEST(Codec, RejectsMalformedInputWithReason) {
  RejectCounter counter;
  for (const auto& c : bad_cases()) {
    auto r = decode(c.bytes);
    ASSERT_FALSE(r) << c.name << " was accepted";
    EXPECT_EQ(to_string(r.error().reason), to_string(c.reason))
        << c.name << ": " << r.error().detail;
    EXPECT_NE(r.error().detail.find(c.detail_contains), std::string::npos)
        << c.name << ": detail was \"" << r.error().detail << "\"";
    counter.add(r.error().reason);
  }
  EXPECT_EQ(counter.total(), bad_cases().size());
  EXPECT_GE(counter.count(Reject::kLimitExceeded), 5u);
}

TEST(Codec, SanitizesUtf8) {
  EXPECT_TRUE(is_valid_utf8("plain ⚠️ text"));
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));      // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));  // surrogate
  EXPECT_EQ(sanitize_utf8("a\xffz"), "a\xEF\xBF\xBDz");
  EXPECT_EQ(sanitize_utf8("ok ✅"), "ok ✅");
  EXPECT_TRUE(is_valid_utf8(sanitize_utf8("\xe2\x82")));
}

// Golden bytes: a change here is a wire change. Update PROTOCOL.md and think about old readers.
std::string hex(const std::string& bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

TEST(Codec, GoldenBytes) {
  const auto bodies = every_kind();
  for (const Body& body : bodies) {
    const std::string name = std::string(to_string(kind_of(body)));
    const std::string got = hex(encode(make_message("probe", "boot-abc", 7, 1785000000.25, body)));
    const std::string path = std::string(TH_PROTO_GOLDEN_DIR) + "/" + name + ".hex";
    std::ifstream in(path);
    if (!in && std::getenv("TH_UPDATE_GOLDEN") != nullptr) {
      std::ofstream(path) << got << "\n";
      continue;
    }
    ASSERT_TRUE(in) << "missing " << path << " (run with TH_UPDATE_GOLDEN=1 to create)";
    std::string want;
    in >> want;
    EXPECT_EQ(got, want) << name << " changed on the wire";
  }
}

}  // namespace
}  // namespace trading_heal::proto
