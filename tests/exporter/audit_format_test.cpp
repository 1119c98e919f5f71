// Audit line format, time formats and the hash chain.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "trading_heal/exporter/audit_format.hpp"
#include "trading_heal/exporter/sha256.hpp"

namespace trading_heal::exporter {
namespace {

proto::Message event(std::uint64_t seq, std::string action = "restart",
                     std::string symbol = "BTC-USDT") {
  proto::Event e;
  e.action = std::move(action);
  e.agent = "BTC_USDT";
  e.symbol = std::move(symbol);
  e.profile = "default";
  e.detail = "restarted crypto-agent@BTC_USDT.service";
  e.reason = "stalled (age=1500s)";
  e.diagnosis = "DB lock on decisions table";
  e.fields["latency_seconds"] = 7.5;
  e.fields["dry_run"] = false;
  e.fields["seq"] = std::int64_t{99};  // collides with a fixed key
  return proto::make_message("actuator", "b00t", seq, 1784215211.022, e);
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Iso8601, FormatsAndParsesUtcWithMilliseconds) {
  EXPECT_EQ(iso8601_utc(1784215211.022), "2026-07-16T15:20:11.022Z");
  EXPECT_EQ(iso8601_utc(0), "1970-01-01T00:00:00.000Z");
  EXPECT_NEAR(*parse_iso8601_utc("2026-07-16T15:20:11.022Z"), 1784215211.022, 1e-6);
  EXPECT_NEAR(*parse_iso8601_utc("2026-07-16T15:20:11Z"), 1784215211.0, 1e-9);
  EXPECT_NEAR(*parse_iso8601_utc("2026-07-16T15:20:11+00:00"), 1784215211.0, 1e-9);
  for (const char* bad :
       {"", "2026-07-16", "2026-07-16T15:20:11", "2026-13-16T15:20:11Z", "2026-07-16T15:20:11.Z",
        "2026-07-16T15:20:11+02:00", "x026-07-16T15:20:11Z"}) {
    EXPECT_FALSE(parse_iso8601_utc(bad)) << bad;
  }
}

TEST(AuditLine, HasTheDocumentedKeysInOrder) {
  const std::string line = format_audit_line(event(12), kGenesisHash);
  auto j = nlohmann::ordered_json::parse(line);
  std::vector<std::string> keys;
  for (auto& [k, v] : j.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"ts", "action", "symbol", "agent", "success", "detail",
                                            "reason", "diagnosis", "dry_run", "latency_seconds",
                                            "field_seq", "source", "boot_id", "seq", "prev_hash"}));
  EXPECT_EQ(j["ts"], "2026-07-16T15:20:11.022Z");
  EXPECT_EQ(j["symbol"], "BTC-USDT");
  EXPECT_EQ(j["seq"], 12);
  EXPECT_EQ(j["field_seq"], 99);
  EXPECT_EQ(j["prev_hash"], kGenesisHash);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(line_ts(line), "2026-07-16T15:20:11.022Z");
  auto id = line_identity(line);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->source, "actuator");
  EXPECT_EQ(id->boot_id, "b00t");
  EXPECT_EQ(id->seq, 12u);
}

TEST(AuditLine, ProfileOnlyWhenNotDefaultAndHostileTextStaysOneLine) {
  auto m = event(1);
  auto& e = std::get<proto::Event>(m.body);
  e.profile = "conservative";
  e.detail = "line\nbreak \",\"source\":\"evil\" \xff";
  const std::string line = format_audit_line(m, kGenesisHash);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["profile"], "conservative");
  EXPECT_EQ(line_identity(line)->source, "actuator");
}

TEST(Chain, VerifierFindsTheFirstBrokenLine) {
  std::vector<std::string> lines;
  std::string prev = kGenesisHash;
  for (std::uint64_t i = 1; i <= 5; ++i) {
    lines.push_back(format_audit_line(event(i), prev));
    prev = sha256_hex(lines.back());
  }
  {
    ChainVerifier v(kGenesisHash);
    for (const auto& l : lines) EXPECT_TRUE(v.feed(l));
    EXPECT_FALSE(v.broken());
    EXPECT_EQ(v.last_hash(), prev);
  }
  auto tampered = lines;
  tampered[2].replace(tampered[2].find("restart"), 7, "recover");
  ChainVerifier v(kGenesisHash);
  for (const auto& l : tampered) v.feed(l);
  EXPECT_TRUE(v.broken());
  EXPECT_EQ(v.broken_line(), 4u);  // line 3 was edited: line 4's prev_hash no longer matches
  ChainVerifier deleted(kGenesisHash);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i != 1) deleted.feed(lines[i]);
  }
  EXPECT_EQ(deleted.broken_line(), 2u);
  ChainVerifier anchored_elsewhere;  // a rotated file alone: its first line is the anchor
  for (std::size_t i = 2; i < lines.size(); ++i) EXPECT_TRUE(anchored_elsewhere.feed(lines[i]));
  ChainVerifier garbage(kGenesisHash);
  EXPECT_FALSE(garbage.feed("not json"));
  EXPECT_EQ(garbage.broken_line(), 1u);
}

// The host a record came from is the exporter's word, written after `agent`; a field that
// claims a host is kept apart (field_host), and line_identity reads the host back.
TEST(AuditFormat, TheHostIsTheExportersAndReadBack) {
  proto::Event e;
  e.action = "restart";
  e.agent = "BTC_USDT";
  e.symbol = "BTC-USDT";
  e.fields["host"] = std::string("forged");
  const auto m = proto::make_message("actuator", "b00t", 7, 1784215211.0, e);
  const std::string line = format_audit_line(m, kGenesisHash, "alpha");
  EXPECT_NE(line.find(R"("agent":"BTC_USDT","host":"alpha",)"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("field_host":"forged")"), std::string::npos) << line;
  auto id = line_identity(line);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->host, "alpha");
  EXPECT_EQ(id->source, "actuator");
  EXPECT_EQ(id->seq, 7u);
  auto old = line_identity(format_audit_line(m, kGenesisHash));
  ASSERT_TRUE(old);
  EXPECT_EQ(old->host, "") << "a line without host (one host, or written before hosts)";
}

}  // namespace
}  // namespace trading_heal::exporter
