// Linked into every integration test program (th_add_integration_test): before its first test,
// the testbed is put back to a clean fleet (`bed.sh reset`), so no program depends on what an
// earlier one left behind (a fault, a stopped database, a unit with Restart=no).
#include <gtest/gtest.h>

#include "support/bed.hpp"

namespace {

class BedReset : public ::testing::Environment {
 public:
  void SetUp() override {
    const int rc = trading_heal::test::Bed::sh("'" + trading_heal::test::Bed::source_dir() +
                                               "/tests/bed/bed.sh' reset");
    ASSERT_EQ(rc, 0) << "bed.sh reset failed: is the testbed running?";
  }
};

const auto* const kRegistered = ::testing::AddGlobalTestEnvironment(new BedReset);

}  // namespace
