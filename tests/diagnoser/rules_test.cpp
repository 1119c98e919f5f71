#include "trading_heal/diagnoser/rules.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "trading_heal/diagnoser/rule_table.hpp"

#ifndef TH_SHIPPED_RULES
#error "TH_SHIPPED_RULES (the path of deploy/rules/trading-heal.rules) must be defined by the build"
#endif

namespace trading_heal::diagnoser {
namespace {

using proto::DiagnosisAction;
using proto::Severity;

struct Row {
  std::vector<std::string> lines;
  std::string category;
  Severity severity;
  std::string cause_part;
};

class RulesTable : public ::testing::TestWithParam<Row> {};

TEST_P(RulesTable, Classifies) {
  const Row& r = GetParam();
  std::vector<std::string> lines = {
      "2026-07-16T15:40:11Z crypto-agent-BTC_USDT[42]: ✅ Agent started"};
  lines.insert(lines.end(), r.lines.begin(), r.lines.end());
  const RuleMatch m = classify(lines, {proto::Verdict::kStalled, 700.0});
  EXPECT_EQ(m.category, r.category);
  EXPECT_EQ(m.severity, r.severity);
  EXPECT_NE(m.cause.find(r.cause_part), std::string::npos) << m.cause;
  EXPECT_TRUE(m.matched());
}

TEST(Rules, AnOlderIncidentDoesNotOutrankTheCurrentOne) {
  // Connection refused while the database was down, long ago; now the agent stalls on a lock.
  std::vector<std::string> lines(5,
                                 "❌ Loop error: could not connect to server: Connection refused");
  lines.push_back("✅ Agent started");
  for (int i = 0; i < 10; ++i) {
    lines.push_back("⚠️ Price unavailable (timeout)");
    lines.push_back(
        "❌ Loop error: psycopg2.OperationalError: canceling statement due to lock timeout");
  }
  EXPECT_EQ(classify(lines, {proto::Verdict::kStalled, 700.0}).category, "db_lock");
  // And the other way round: a deadlock long ago does not hide today's refused connections.
  std::vector<std::string> other(3, "psycopg2.errors.DeadlockDetected: deadlock detected");
  for (int i = 0; i < 9; ++i)
    other.push_back("❌ Loop error: could not connect to server: Connection refused");
  EXPECT_EQ(classify(other, {proto::Verdict::kStalled, 700.0}).category, "connection_refused");
}

TEST(Rules, TheCurrentRunOutranksThePreviousOne) {
  // Refused connections before the agent's restart; since then one lock timeout.
  std::vector<std::string> lines(6,
                                 "❌ Loop error: could not connect to server: Connection refused");
  lines.push_back("INFO | 🤖 Agent initialized: BTC-USDT (dry_run=False, profile=default)");
  lines.push_back("INFO | 🔄 Starting bootstrap sequence...");
  lines.push_back(
      "❌ Loop error: psycopg2.OperationalError: canceling statement due to lock timeout");
  EXPECT_EQ(classify(lines, {proto::Verdict::kStalled, 700.0}).category, "db_lock");
  // A crash loop: the current run has logged nothing yet, so the previous run's traceback counts.
  std::vector<std::string> crash{
      "Traceback (most recent call last):", "  File \"trading_agent.py\", line 42, in <module>",
      "KeyError: 'close'", "INFO | 🤖 Agent initialized: BTC-USDT"};
  EXPECT_EQ(classify(crash, {proto::Verdict::kDown, std::nullopt}).category, "crash");
}

INSTANTIATE_TEST_SUITE_P(
    KnownCauses, RulesTable,
    ::testing::Values(
        Row{{"❌ Loop error: psycopg2.OperationalError: canceling statement due to lock timeout"},
            "db_lock",
            Severity::kHigh,
            "DB lock"},
        // The simulator's stall: an API timeout and a DB lock; the lock is the better cause.
        Row{{"⚠️ Price unavailable (timeout)",
             "❌ Loop error: psycopg2.OperationalError: canceling statement due to lock timeout",
             "⚠️ Price unavailable (timeout)"},
            "db_lock",
            Severity::kHigh,
            "DB lock"},
        Row{{"psycopg2.errors.DeadlockDetected: deadlock detected"},
            "deadlock",
            Severity::kHigh,
            "deadlock"},
        Row{{"psycopg2.errors.LockNotAvailable: could not obtain lock on row"},
            "deadlock",
            Severity::kHigh,
            "deadlock"},
        Row{{"❌ Loop error: could not connect to server: Connection refused"},
            "connection_refused",
            Severity::kHigh,
            "Connection refused"},
        Row{{"2026-07-16 15:40:11,022 | WARNING | ⚠️ Price unavailable (timeout)"},
            "api_timeout",
            Severity::kMedium,
            "API timeout"},
        Row{{"urllib.error.URLError: <urlopen error timed out>"},
            "api_timeout",
            Severity::kMedium,
            "API timeout"},
        Row{{"ccxt.RateLimitExceeded: kucoin 429 Too Many Requests"},
            "rate_limit",
            Severity::kMedium,
            "429"},
        Row{{"WARNING | thread stall detected in order loop"},
            "thread_stall",
            Severity::kMedium,
            "stall"},
        Row{{"WARNING | lock contention on market_state, waiting for lock"},
            "thread_stall",
            Severity::kMedium,
            "contention"},
        Row{{"crypto-agent@BTC_USDT.service: Failed with result 'oom-kill'."},
            "oom",
            Severity::kCritical,
            "Out of memory"},
        Row{{"MemoryError"}, "oom", Severity::kCritical, "memory"},
        Row{{"Out of memory: Killed process 4242 (python3)"}, "oom", Severity::kCritical, "OOM"},
        Row{{"💥 Unhandled exception in trading loop", "Traceback (most recent call last):",
             "  File \"/opt/crypto-agent/trading_agent.py\", line 812, in <module>", "    main()",
             "KeyError: 'close'"},
            "crash",
            Severity::kHigh,
            "KeyError: 'close'"},
        Row{{"Traceback (most recent call last):", "  File \"x.py\", line 1, in f",
             "ZeroDivisionError: division by zero"},
            "crash",
            Severity::kHigh,
            "ZeroDivisionError"},
        Row{{"OSError: [Errno 28] No space left on device"},
            "disk_full",
            Severity::kCritical,
            "Disk full"},
        // Categories beyond the original nine (more in rules_corpus.tsv).
        Row{{"crypto-agent@BTC_USDT.service: A process of this unit has been killed by the OOM "
             "killer."},
            "oom",
            Severity::kCritical,
            "Out of memory"},
        Row{{"OSError: [Errno 30] Read-only file system: '/var/lib/crypto-agent/state.json'"},
            "read_only_fs",
            Severity::kCritical,
            "Read-only"},
        Row{{"sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached, "
             "connection timed out, timeout 30.00"},
            "db_pool_exhausted",
            Severity::kHigh,
            "exhausted"},
        Row{{"ccxt.base.errors.AuthenticationError: kucoin {\"code\":\"400003\",\"msg\":\"KC-API-"
             "KEY not exists\"}"},
            "auth_failed",
            Severity::kHigh,
            "Credentials"},
        Row{{"2026-07-16 15:43:00,500 | ERROR | ❌ Erro no loop: Saldo insuficiente"},
            "insufficient_balance",
            Severity::kMedium,
            "balance"},
        Row{{"psycopg2.OperationalError: could not translate host name \"db\" to address: "
             "Temporary failure in name resolution"},
            "dns_failure",
            Severity::kHigh,
            "DNS"},
        Row{{"ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
             "failed: certificate has expired (_ssl.c:1006)"},
            "tls_failure",
            Severity::kHigh,
            "TLS"}));

TEST(Rules, AMissingModuleOutranksItsTraceback) {
  const std::string exited = "crypto-agent@BTC_USDT.service: Main process exited, status=1/FAILURE";
  const auto m =
      classify({"Traceback (most recent call last):",
                "  File \"/opt/crypto-agent/trading_agent.py\", line 3, in <module>",
                "    import ccxt", "ModuleNotFoundError: No module named 'ccxt'", exited},
               {proto::Verdict::kDown, std::nullopt});
  EXPECT_EQ(m.category, "module_missing");
  EXPECT_EQ(m.action, DiagnosisAction::kManual);
  EXPECT_EQ(m.evidence, "ModuleNotFoundError: No module named 'ccxt'");
}

TEST(Rules, AnOperatorsRuleIsTriedBeforeTheShippedOnes) {
  ParsedRules mine = parse_rules(
      "rule exchange_down high wait KuCoin down\n  match Price unavailable\n", "mine.rules");
  ASSERT_TRUE(mine.errors.empty());
  RuleTable table = mine.rules;
  table.insert(table.end(), builtin_rules().begin(), builtin_rules().end());
  const std::vector<std::string> lines = {"⚠️ Price unavailable (timeout)"};
  EXPECT_EQ(classify(lines, {}, table).category, "exchange_down");
  EXPECT_EQ(classify(lines, {}, table).cause, "KuCoin down");
  EXPECT_EQ(classify(lines, {}).category, "api_timeout");
  // An empty table only has the fallbacks.
  EXPECT_EQ(classify(lines, {proto::Verdict::kStalled, 5.0}, RuleTable{}).category, "stall");
}

// --- The rules file: parser, compiled-in table, loader -----------------------------------------

TEST(RuleTable, TheShippedFileAndTheCompiledInTableMeanTheSame) {
  std::ifstream in(TH_SHIPPED_RULES, std::ios::binary);
  ASSERT_TRUE(in) << "cannot read " << TH_SHIPPED_RULES;
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const ParsedRules shipped = parse_rules(text, "trading-heal.rules");
  for (const auto& e : shipped.errors) ADD_FAILURE() << e.to_string();
  const RuleTable& builtin = builtin_rules();
  ASSERT_EQ(shipped.rules.size(), builtin.size());
  for (std::size_t i = 0; i < builtin.size(); ++i) {
    const Rule& f = shipped.rules[i];
    const Rule& b = builtin[i];
    SCOPED_TRACE("rule " + std::to_string(i) + " (" + f.origin + ")");
    EXPECT_EQ(f.category, b.category);
    EXPECT_EQ(f.cause, b.cause);
    EXPECT_EQ(f.severity, b.severity);
    EXPECT_EQ(f.action, b.action);
    // Keyword order within a rule means nothing; their set does.
    auto fk = f.keywords;
    auto bk = b.keywords;
    std::sort(fk.begin(), fk.end());
    std::sort(bk.begin(), bk.end());
    EXPECT_EQ(fk, bk);
  }
}

TEST(RuleTable, TheCompiledInTableIsWellFormed) {
  for (const auto& r : builtin_rules()) {
    EXPECT_FALSE(r.keywords.empty()) << r.category;
    for (const auto& k : r.keywords) {
      EXPECT_FALSE(k.empty()) << r.category;
      EXPECT_FALSE(std::any_of(k.begin(), k.end(), [](char c) { return c >= 'A' && c <= 'Z'; }))
          << r.category << ": " << k;
    }
  }
}

TEST(RuleTable, ParsesTheFormat) {
  const ParsedRules p = parse_rules(
      "\xEF\xBB\xBF# a comment\r\n"
      "\n"
      "rule  db_lock\thigh  auto-restart   Lock on the decisions table  \r\n"
      "  match Lock Timeout\r\n"
      "\tmatch # not a comment\n"
      "  match lock timeout\n"
      "rule exchange_down critical wait Exchange down\n"
      "match ExchangeNotAvailable",
      "x.rules");
  EXPECT_TRUE(p.errors.empty()) << p.errors.front().to_string();
  ASSERT_EQ(p.rules.size(), 2u);
  EXPECT_EQ(p.rules[0].category, "db_lock");
  EXPECT_EQ(p.rules[0].severity, Severity::kHigh);
  EXPECT_EQ(p.rules[0].action, DiagnosisAction::kAutoRestart);
  EXPECT_EQ(p.rules[0].cause, "Lock on the decisions table");
  EXPECT_EQ(p.rules[0].keywords, (std::vector<std::string>{"lock timeout", "# not a comment"}));
  EXPECT_EQ(p.rules[0].origin, "x.rules:3");
  EXPECT_EQ(p.rules[1].severity, Severity::kCritical);
  EXPECT_EQ(p.rules[1].action, DiagnosisAction::kWait);
  EXPECT_EQ(p.rules[1].keywords, std::vector<std::string>{"exchangenotavailable"});
}

TEST(RuleTable, ReportsMalformedLinesWithFileAndLineAndSkipsThem) {
  const std::vector<std::string> lines = {
      "match orphan",                                           // 1: before any rule
      "rule ok high wait A good rule",                          // 2
      "  match good",                                           // 3
      "  match",                                                // 4: no keyword
      "  mtach typo",                                           // 5: unknown directive
      "rule Bad-Name high wait Cause",                          // 6: category
      "  match skipped with its rule",                          // 7: quietly, with rule 6
      "rule x urgent wait Cause",                               // 8: severity
      "rule x high reboot Cause",                               // 9: action
      "rule x high wait",                                       // 10: no cause
      "rule stall high wait Cause",                             // 11: reserved
      "rule empty low wait No keywords",                        // 12: no match line
      "rule ok2 low manual Another",                            // 13
      "  match " + std::string(kMaxRuleKeywordBytes + 1, 'k'),  // 14: too long
      "  match fine",                                           // 15
  };
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  const ParsedRules p = parse_rules(text, "/etc/trading-heal/rules.d/10-local.rules");
  ASSERT_EQ(p.rules.size(), 2u);
  EXPECT_EQ(p.rules[0].category, "ok");
  EXPECT_EQ(p.rules[0].keywords, std::vector<std::string>{"good"});
  EXPECT_EQ(p.rules[1].category, "ok2");
  EXPECT_EQ(p.rules[1].keywords, std::vector<std::string>{"fine"});
  std::vector<std::size_t> error_lines;
  for (const auto& e : p.errors) {
    error_lines.push_back(e.line);
    EXPECT_EQ(e.file, "/etc/trading-heal/rules.d/10-local.rules");
  }
  EXPECT_EQ(error_lines, (std::vector<std::size_t>{1, 4, 5, 6, 8, 9, 10, 11, 12, 14}));
  EXPECT_EQ(p.errors[0].to_string(),
            "/etc/trading-heal/rules.d/10-local.rules:1: match before any rule; line skipped");
  EXPECT_NE(p.errors[2].message.find("\"mtach\""), std::string::npos) << p.errors[2].message;
}

TEST(RuleTable, SurvivesAnyInput) {
  // Valid rules mutated at random (deterministic seed): whatever comes out is well-formed.
  using namespace std::string_literals;  // "..."s keeps the NUL
  const std::string alphabet = "rule match \t\n\r#abcz_019-\"'\xC3\xA7\x00\x7F\xFF"s;
  const std::string valid =
      "rule db_lock high auto-restart DB lock\n  match lock timeout\n"
      "rule exchange_down low wait Exchange down\n\tmatch 503 Service Unavailable\n";
  std::mt19937 rng(42);
  std::size_t rules = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string text = valid;
    for (int edits = static_cast<int>(rng() % 6); edits-- > 0 && !text.empty();) {
      const std::size_t at = rng() % text.size();
      const char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0:
          text[at] = c;
          break;
        case 1:
          text.erase(at, 1);
          break;
        default:
          text.insert(at, 1, c);
      }
    }
    const ParsedRules p = parse_rules(text, "fuzz.rules");
    rules += p.rules.size();
    for (const auto& r : p.rules) {
      EXPECT_FALSE(r.category.empty());
      EXPECT_FALSE(r.cause.empty());
      ASSERT_FALSE(r.keywords.empty());
      for (const auto& k : r.keywords) {
        EXPECT_FALSE(k.empty());
        EXPECT_EQ(std::count_if(k.begin(), k.end(),
                                [](char c) { return (c >= 'A' && c <= 'Z') || c == '\0'; }),
                  0);
      }
    }
    for (const auto& e : p.errors) EXPECT_GT(e.line, 0u);
  }
  EXPECT_GT(rules, 1000u);  // the mutations left many rules intact: the test saw both sides
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "th-rules-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string write(const std::string& name, const std::string& text) const {
    const auto p = path_ / name;
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }

 private:
  std::filesystem::path path_;
};

TEST(RuleTable, LoadsExtensionsInNameOrderBeforeTheShippedRules) {
  TempDir tmp;
  std::filesystem::create_directory(tmp.path() / "rules.d");
  const std::string shipped =
      tmp.write("shipped.rules", "rule shipped_one medium wait Shipped\n  match boom\n");
  tmp.write("rules.d/20-b.rules", "rule second low wait B\n  match boom\n");
  tmp.write("rules.d/10-a.rules", "rule first low wait A\n  match boom\nbad line\n");
  tmp.write("rules.d/.hidden.rules", "rule hidden low wait H\n  match boom\n");
  tmp.write("rules.d/30-c.rules.dpkg-old", "rule old low wait O\n  match boom\n");
  const LoadedRules l = load_rules(shipped, (tmp.path() / "rules.d").string());
  ASSERT_EQ(l.table.size(), 3u);
  EXPECT_EQ(l.table[0].category, "first");
  EXPECT_EQ(l.table[1].category, "second");
  EXPECT_EQ(l.table[2].category, "shipped_one");
  EXPECT_EQ(l.extension_rules, 2u);
  EXPECT_FALSE(l.builtin);
  ASSERT_EQ(l.files.size(), 3u);
  EXPECT_EQ(l.files[2], shipped);
  ASSERT_EQ(l.errors.size(), 1u);
  EXPECT_EQ(l.errors[0].to_string(), (tmp.path() / "rules.d/10-a.rules").string() +
                                         ":3: unknown directive \"bad\" (expected rule or match)");
  EXPECT_EQ(classify({"boom"}, {}, l.table).category, "first");
}

TEST(RuleTable, FallsBackToTheCompiledInTable) {
  TempDir tmp;
  // The shipped file missing: reported, the built-in table stands in; no rules.d is normal.
  LoadedRules l =
      load_rules((tmp.path() / "missing.rules").string(), (tmp.path() / "no-such-dir").string());
  EXPECT_TRUE(l.builtin);
  EXPECT_EQ(l.table.size(), builtin_rules().size());
  ASSERT_EQ(l.errors.size(), 2u);
  EXPECT_EQ(l.errors[0].line, 0u);
  EXPECT_NE(l.errors[0].to_string().find("missing.rules: cannot read"), std::string::npos)
      << l.errors[0].to_string();
  // A shipped file without a single valid rule: the same.
  l = load_rules(tmp.write("broken.rules", "rule x y z\n"), "");
  EXPECT_TRUE(l.builtin);
  EXPECT_EQ(l.table.size(), builtin_rules().size());
  EXPECT_EQ(l.errors.size(), 2u);
  // No shipped file asked for: the built-in table, quietly; extensions still first.
  std::filesystem::create_directory(tmp.path() / "rules.d");
  tmp.write("rules.d/local.rules", "rule mine low wait Mine\n  match boom\n");
  l = load_rules("", (tmp.path() / "rules.d").string());
  EXPECT_TRUE(l.builtin);
  EXPECT_TRUE(l.errors.empty());
  ASSERT_EQ(l.table.size(), builtin_rules().size() + 1);
  EXPECT_EQ(l.table.front().category, "mine");
  // A file over the size bound is refused, not read.
  l = load_rules(tmp.write("huge.rules", std::string(kMaxRulesFileBytes + 1, '#')), "");
  EXPECT_TRUE(l.builtin);
  EXPECT_NE(l.errors.at(0).message.find("larger than"), std::string::npos);
}

TEST(Rules, CrashCauseNamesTheException) {
  const auto m = classify(
      {"Traceback (most recent call last):", "  File \"a.py\", line 3", "ValueError: bad candle"},
      {});
  EXPECT_EQ(m.cause, "Python crash: ValueError: bad candle");
  EXPECT_EQ(m.action, DiagnosisAction::kAutoRestart);
}

TEST(Rules, PricesDoNotLookLikeRateLimits) {
  const auto m = classify({"📍 BUY signal @ $64,429.10 (71.0%) - rsi_oversold"},
                          {proto::Verdict::kStalled, 1500.0});
  EXPECT_EQ(m.category, "stall");
  EXPECT_FALSE(m.matched());
  EXPECT_NE(m.cause.find("1500s"), std::string::npos) << m.cause;
}

TEST(Rules, FallbacksFollowTheVerdict) {
  EXPECT_EQ(classify({}, {proto::Verdict::kDown, std::nullopt}).category, "down");
  EXPECT_EQ(classify({}, {proto::Verdict::kUnknown, std::nullopt}).category, "unknown");
  EXPECT_EQ(classify({"all fine"}, {proto::Verdict::kStalled, std::nullopt}).category, "stall");
}

TEST(Rules, EvidenceIsTheNewestMatchingLine) {
  const auto m = classify({"Connection refused (1)", "ok", "Connection refused (2)", "ok"}, {});
  EXPECT_EQ(m.evidence, "Connection refused (2)");
}

TEST(Rules, PythonExceptionNeedsATraceback) {
  EXPECT_EQ(python_exception({"psycopg2.OperationalError: lock timeout"}), "");
  EXPECT_EQ(python_exception({"Traceback (most recent call last):", "KeyError"}), "KeyError");
}

}  // namespace
}  // namespace trading_heal::diagnoser
