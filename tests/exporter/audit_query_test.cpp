// GET /audit parameters and matching.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "trading_heal/exporter/audit_format.hpp"
#include "trading_heal/exporter/audit_query.hpp"

namespace trading_heal::exporter {
namespace {

std::string line(double ts, const std::string& action, const std::string& symbol,
                 std::uint64_t seq) {
  proto::Event e;
  e.action = action;
  e.symbol = symbol;
  e.agent = symbol;
  e.detail = R"(mentions "symbol":"ETH-USDT" in text)";
  return format_audit_line(proto::make_message("actuator", "b", seq, ts, e), kGenesisHash);
}

TEST(AuditQuery, DefaultsAndValidValues) {
  auto q = parse_audit_query({});
  ASSERT_TRUE(q);
  EXPECT_EQ(q->limit, kDefaultAuditLimit);
  q = parse_audit_query({{"symbol", "BTC-USDT"},
                         {"action", "rate_limited"},
                         {"limit", "10"},
                         {"since", "2026-07-16T15:00:00Z"},
                         {"until", "1784300000"}});
  ASSERT_TRUE(q);
  EXPECT_EQ(*q->symbol, "BTC-USDT");
  EXPECT_EQ(q->limit, 10u);
  EXPECT_EQ(q->since_ts, "2026-07-16T15:00:00.000Z");
}

TEST(AuditQuery, BadParametersAreNamed) {
  const std::vector<std::pair<QueryParams, std::string>> cases = {
      {{{"limit", "0"}}, "limit"},
      {{{"limit", "10001"}}, "limit"},
      {{{"limit", "12abc"}}, "limit"},
      {{{"limit", "-1"}}, "limit"},
      {{{"symbol", "BTC USDT"}}, "symbol"},
      {{{"symbol", "\"}"}}, "symbol"},
      {{{"symbol", std::string(65, 'A')}}, "symbol"},
      {{{"action", "Restart!"}}, "action"},
      {{{"since", "yesterday"}}, "since"},
      {{{"until", "nan"}}, "until"},
      {{{"since", "1784300000"}, {"until", "1784200000"}}, "until"},
      {{{"symbol", "A"}, {"symbol", "B"}}, "symbol"},
      {{{"symbol", ""}}, "symbol"},
      {{{"path", "../../etc/passwd"}}, "path"},
  };
  for (const auto& [params, name] : cases) {
    auto q = parse_audit_query(params);
    ASSERT_FALSE(q) << name;
    EXPECT_EQ(q.error().parameter, name);
    EXPECT_FALSE(q.error().message.empty());
  }
}

TEST(AuditQuery, MatchesExactValuesNotTextInsideStrings) {
  const std::string btc = line(1784215211, "restart", "BTC-USDT", 1);
  auto q = parse_audit_query({{"symbol", "ETH-USDT"}});
  EXPECT_FALSE(matches(*q, btc));  // the detail text quotes ETH-USDT, escaped
  q = parse_audit_query({{"symbol", "BTC-USD"}});
  EXPECT_FALSE(matches(*q, btc));  // prefix of a value is no match
  q = parse_audit_query({{"symbol", "BTC-USDT"}, {"action", "restart"}});
  EXPECT_TRUE(matches(*q, btc));
  q = parse_audit_query({{"since", "1784215211"}, {"until", "1784215212"}});
  EXPECT_TRUE(matches(*q, btc));
  q = parse_audit_query({{"since", "1784215211.5"}});
  EXPECT_FALSE(matches(*q, btc));
  q = parse_audit_query({{"until", "1784215211"}});
  EXPECT_FALSE(matches(*q, btc));  // until is exclusive
}

TEST(AuditCollector, KeepsTheNewestLimitOldestFirst) {
  auto q = parse_audit_query({{"symbol", "BTC-USDT"}, {"limit", "2"}});
  AuditCollector c(*q);
  // Fed newest first.
  EXPECT_TRUE(c.feed_newest_first(line(105, "restart", "BTC-USDT", 5)));
  EXPECT_TRUE(c.feed_newest_first(line(104, "restart", "ETH-USDT", 4)));
  EXPECT_TRUE(c.feed_newest_first("torn {garbage"));
  EXPECT_FALSE(c.feed_newest_first(line(103, "recovered", "BTC-USDT", 3)));
  auto arr = nlohmann::json::parse(c.json_array());
  ASSERT_EQ(arr.size(), 2u);
  EXPECT_EQ(arr[0]["seq"], 3);
  EXPECT_EQ(arr[1]["seq"], 5);
  AuditQuery none = *parse_audit_query({});
  EXPECT_EQ(nlohmann::json::parse(AuditCollector(none).json_array()), nlohmann::json::array());
}

}  // namespace
}  // namespace trading_heal::exporter
