// The audit file: torn-line recovery, group commit, rotation across files, reopen (logrotate),
// a full disk (simulated with RLIMIT_FSIZE), queries across rotated files and chain checks.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "trading_heal/common/zmq.hpp"
#include "trading_heal/exporter/audit_format.hpp"
#include "trading_heal/exporter/audit_log.hpp"
#include "trading_heal/exporter/audit_reader.hpp"

namespace trading_heal::exporter {
namespace {

namespace fs = std::filesystem;

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("th-audit-" + common::random_boot_id());
    fs::create_directories(dir_);
    path_ = (dir_ / kAuditFileName).string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  static proto::Message event(std::uint64_t seq, const std::string& symbol = "BTC-USDT") {
    proto::Event e;
    e.action = seq % 2 == 0 ? "restart" : "recovered";
    e.symbol = symbol;
    e.agent = "BTC_USDT";
    e.detail = std::string(100, 'x');
    return proto::make_message("actuator", "boot", seq, 1784215211.0 + static_cast<double>(seq), e);
  }
  static std::string read(const std::string& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  int verify(const std::vector<std::string>& files, std::string* out = nullptr) {
    std::ostringstream o;
    int rc = verify_audit_files(files, o);
    if (out != nullptr) *out = o.str();
    return rc;
  }

  fs::path dir_;
  std::string path_;
};

TEST_F(AuditLogTest, GroupCommitWritesLinesChainedFromGenesis) {
  auto log = AuditLog::open({path_, 1 << 20, 3});
  ASSERT_TRUE(log) << log.error();
  for (std::uint64_t i = 1; i <= 3; ++i) (*log)->stage(event(i));
  EXPECT_EQ(read(path_), "");  // nothing before the commit
  ASSERT_TRUE((*log)->commit());
  const std::string text = read(path_);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3);
  EXPECT_EQ(nlohmann::json::parse(text.substr(0, text.find('\n')))["prev_hash"], kGenesisHash);
  std::string out;
  EXPECT_EQ(verify({path_}, &out), 0) << out;
  EXPECT_NE(out.find("lines=3"), std::string::npos);
}

TEST_F(AuditLogTest, TornLastLineIsCutAndReportedAndTheChainGoesOn) {
  {
    auto log = AuditLog::open({path_, 1 << 20, 3});
    ASSERT_TRUE(log);
    (*log)->stage(event(1));
    (*log)->stage(event(2));
    ASSERT_TRUE((*log)->commit());
  }
  const auto good = fs::file_size(path_);
  std::ofstream(path_, std::ios::app) << R"({"ts":"2026-07-16T15:20:1)";  // power loss mid-line
  auto log = AuditLog::open({path_, 1 << 20, 3});
  ASSERT_TRUE(log);
  EXPECT_NE((*log)->recovered_note().find("torn"), std::string::npos);
  EXPECT_EQ(fs::file_size(path_), good);
  (*log)->stage(event(3));
  ASSERT_TRUE((*log)->commit());
  std::string out;
  EXPECT_EQ(verify({path_}, &out), 0) << out;
  EXPECT_NE(out.find("lines=3"), std::string::npos);
}

TEST_F(AuditLogTest, RotatesKeepsNFilesAndQueriesReadAcrossThem) {
  auto log = AuditLog::open({path_, 4096, 2});
  ASSERT_TRUE(log);
  for (std::uint64_t i = 1; i <= 60; ++i) {
    (*log)->stage(event(i, i % 3 == 0 ? "ETH-USDT" : "BTC-USDT"));
    ASSERT_TRUE((*log)->commit());
  }
  EXPECT_GE((*log)->rotations(), 2u);
  EXPECT_TRUE(fs::exists(path_ + ".1"));
  EXPECT_TRUE(fs::exists(path_ + ".2"));
  EXPECT_FALSE(fs::exists(path_ + ".3"));
  EXPECT_LE(fs::file_size(path_), 4096u);
  std::string out;
  EXPECT_EQ(verify({path_ + ".2", path_ + ".1", path_}, &out), 0) << out;
  // The chain crosses files: the wrong order breaks it.
  EXPECT_EQ(verify({path_ + ".1", path_ + ".2", path_}, &out), 1) << out;

  auto q = parse_audit_query({{"symbol", "ETH-USDT"}});
  auto all = nlohmann::json::parse(query_audit((*log)->open_for_read(), *q));
  const auto in_files = [&] {
    std::size_t n = 0;
    for (const auto& p : {path_, path_ + ".1", path_ + ".2"}) {
      const std::string t = read(p);
      for (std::size_t pos = 0; (pos = t.find(R"("symbol":"ETH-USDT")", pos)) != std::string::npos;
           ++pos)
        ++n;
    }
    return n;
  }();
  ASSERT_EQ(all.size(), in_files);
  ASSERT_GT(all.size(), 5u);
  for (std::size_t i = 1; i < all.size(); ++i) EXPECT_LT(all[i - 1]["seq"], all[i]["seq"]);
  EXPECT_EQ(all.back()["seq"], 60);  // seq 60 is ETH (60 % 3 == 0), the newest
  q = parse_audit_query({{"limit", "10000"}});
  auto kept = nlohmann::json::parse(query_audit((*log)->open_for_read(), *q));
  ASSERT_GT(kept.size(), 20u);  // three files of ~13 lines
  const std::size_t n = kept.size() - 5;
  q = parse_audit_query({{"limit", std::to_string(n)}});
  auto last_n = nlohmann::json::parse(query_audit((*log)->open_for_read(), *q));
  ASSERT_EQ(last_n.size(), n);
  EXPECT_EQ(last_n.front()["seq"], 60 - n + 1);
  EXPECT_EQ(last_n.back()["seq"], 60);
  // A filter that matches nothing stops after the scan bound and says so (here 20 lines).
  q = parse_audit_query({{"symbol", "NOPE-USDT"}});
  std::uint64_t stopped = 0;
  EXPECT_EQ(nlohmann::json::parse(query_audit((*log)->open_for_read(), *q, &stopped, 20)).size(),
            0u);
  EXPECT_EQ(stopped, 20u);
  q = parse_audit_query({{"symbol", "ETH-USDT"}, {"limit", "3"}});
  EXPECT_EQ(nlohmann::json::parse(query_audit((*log)->open_for_read(), *q, &stopped, 20)).size(),
            3u);
  EXPECT_EQ(stopped, 0u) << "found enough before the bound: complete";
}

TEST_F(AuditLogTest, ReopenAfterLogrotateMovedTheFile) {
  auto log = AuditLog::open({path_, 1 << 20, 3});
  ASSERT_TRUE(log);
  (*log)->stage(event(1));
  ASSERT_TRUE((*log)->commit());
  fs::rename(path_, path_ + "-20260716");
  (*log)->stage(event(2));
  ASSERT_TRUE((*log)->commit());  // still the moved file until SIGHUP
  ASSERT_TRUE((*log)->reopen());
  (*log)->stage(event(3));
  ASSERT_TRUE((*log)->commit());
  EXPECT_EQ(std::count_if(std::istreambuf_iterator<char>(*std::make_unique<std::ifstream>(path_)),
                          {}, [](char c) { return c == '\n'; }),
            1);
  std::string out;
  EXPECT_EQ(verify({path_ + "-20260716", path_}, &out), 0) << out;
}

TEST_F(AuditLogTest, DiskFullLeavesNoPartialLineAndWritesWhenSpaceReturns) {
  auto log = AuditLog::open({path_, 1 << 20, 3});
  ASSERT_TRUE(log);
  (*log)->stage(event(1));
  ASSERT_TRUE((*log)->commit());
  const auto size = fs::file_size(path_);
  // "Disk full": the file may not grow past its size + 50 bytes (write fails with EFBIG).
  std::signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  ::getrlimit(RLIMIT_FSIZE, &old);
  rlimit lim = old;
  lim.rlim_cur = size + 50;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &lim), 0);
  (*log)->stage(event(2));
  (*log)->stage(event(3));
  auto r = (*log)->commit();
  ::setrlimit(RLIMIT_FSIZE, &old);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("cannot write"), std::string::npos) << r.error();
  EXPECT_EQ(fs::file_size(path_), size);  // the partial write was cut back
  EXPECT_EQ((*log)->staged(), 0u);
  (*log)->stage(event(2));  // the sender resends; space is back
  (*log)->stage(event(3));
  ASSERT_TRUE((*log)->commit());
  std::string out;
  EXPECT_EQ(verify({path_}, &out), 0) << out;
  EXPECT_NE(out.find("lines=3"), std::string::npos);
}

TEST_F(AuditLogTest, VerifierReportsTheFirstTamperedLine) {
  auto log = AuditLog::open({path_, 1 << 20, 3});
  ASSERT_TRUE(log);
  for (std::uint64_t i = 1; i <= 5; ++i) (*log)->stage(event(i));
  ASSERT_TRUE((*log)->commit());
  std::string text = read(path_);
  text.replace(text.find("recovered"), 9, "xecovered");  // line 1
  std::ofstream(path_, std::ios::trunc) << text;
  std::string out;
  EXPECT_EQ(verify({path_}, &out), 1);
  EXPECT_NE(out.find(":2:"), std::string::npos) << out;
  EXPECT_EQ(verify({path_ + ".missing"}, &out), 2);
}

TEST(ReadLines, BackwardsAndForwardsAcrossChunkBoundaries) {
  const std::string p = ::testing::TempDir() + "/th-lines-" + common::random_boot_id();
  std::vector<std::string> lines;
  {
    std::ofstream out(p);
    for (int i = 0; i < 3000; ++i) {
      lines.push_back(std::to_string(i) + std::string(static_cast<std::size_t>(i % 997), 'y'));
      out << lines.back() << '\n';
    }
    out << "partial";
  }
  Fd fd(::open(p.c_str(), O_RDONLY));
  std::vector<std::string> back, fwd;
  read_lines_backwards(fd.get(), [&](std::string_view l) {
    back.emplace_back(l);
    return true;
  });
  read_lines_forwards(fd.get(), [&](std::string_view l) {
    fwd.emplace_back(l);
    return true;
  });
  std::reverse(back.begin(), back.end());
  EXPECT_EQ(back, lines);
  EXPECT_EQ(fwd, lines);
  fs::remove(p);
}

}  // namespace
}  // namespace trading_heal::exporter
