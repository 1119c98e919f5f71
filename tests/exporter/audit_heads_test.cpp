// The recorded audit heads against the files' lines: a file cut back after a head was recorded
// is found; heads older than the rotated-away history are not asked for; entries that did not
// come from an exporter unit do not count either way.
#include <gtest/gtest.h>

#include "trading_heal/exporter/audit_format.hpp"
#include "trading_heal/exporter/audit_heads.hpp"

namespace trading_heal::exporter {
namespace {

RecordedHead head(const std::string& hash,
                  const std::string& unit = "trading-heal-exporter@main.service") {
  return RecordedHead{hash, "hourly", "2026-12-03T10:00:00Z", unit};
}

TEST(AuditHeads, EveryRecordedHeadIsALineOfTheFiles) {
  const std::unordered_set<std::string> lines{"h1", "h2", "h3"};
  const auto c = check_recorded_heads({head("h3"), head("h2"), head("h1")}, lines, kGenesisHash);
  EXPECT_TRUE(c.ok());
  EXPECT_EQ(c.checked, 3);
  EXPECT_FALSE(c.reached_rotated);
}

TEST(AuditHeads, AFileCutBackLacksTheNewestHead) {
  // h4 and h5 were written and recorded, then the file was cut back to h3.
  const std::unordered_set<std::string> lines{"h1", "h2", "h3"};
  const auto c = check_recorded_heads({head("h5"), head("h3"), head("h4")}, lines, kGenesisHash);
  ASSERT_EQ(c.missing.size(), 2U);
  EXPECT_EQ(c.missing[0].hash, "h5");
  EXPECT_EQ(c.missing[1].hash, "h4");
  EXPECT_EQ(c.checked, 1);
}

TEST(AuditHeads, HeadsOfRotatedAwayFilesAreNotAskedFor) {
  // The oldest file given starts after r9 (its first line's prev_hash): r9 was recorded at the
  // rotation; what was recorded before it is in files not given.
  const std::unordered_set<std::string> lines{"h1", "h2"};
  const auto c =
      check_recorded_heads({head("h2"), head("r9"), head("r5"), head("r1")}, lines, "r9");
  EXPECT_TRUE(c.ok());
  EXPECT_TRUE(c.reached_rotated);
  EXPECT_EQ(c.checked, 1);
}

TEST(AuditHeads, EntriesNotFromAnExporterUnitAreIgnored) {
  const std::unordered_set<std::string> lines{"h1"};
  const auto c =
      check_recorded_heads({head("forged", ""), head("forged2", "trading-heal-probe@main.service"),
                            head("h1"), head("r0", "sshd.service")},
                           lines, kGenesisHash);
  EXPECT_TRUE(c.ok());
  EXPECT_EQ(c.ignored, 3);
  EXPECT_EQ(c.checked, 1);
}

}  // namespace
}  // namespace trading_heal::exporter
