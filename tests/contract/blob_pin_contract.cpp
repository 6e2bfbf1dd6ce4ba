// Contract of MetadataStore's blob pins (PinBlob, UnpinBlob, ReclaimBlob), run against every
// store backend: what keeps bytes an upload has just committed from being reclaimed by another
// instance before its package refers to them.

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "contract/record_helpers.hpp"
#include "contract/store_backends.hpp"

namespace dlipkg {
namespace {

using test::BackendFactory;
using test::Must;
using test::Package;

const std::string kSha(64, 'a');

class BlobPinContract : public ::testing::TestWithParam<BackendFactory> {
 protected:
  void SetUp() override {
    if (const auto why = GetParam().skip_reason(); !why.empty()) GTEST_SKIP() << why;
    backend_ = GetParam().make();
    store_ = Must(backend_->Connect()).metadata;
  }
  // ReclaimBlob with a `remove` that counts its calls.
  bool Reclaim(std::int64_t now, int& removed) {
    return Must(store_->ReclaimBlob(kSha, now, [&]() -> Result<void> {
      ++removed;
      return {};
    }));
  }
  std::unique_ptr<test::StoreBackend> backend_;
  std::shared_ptr<MetadataStore> store_;
};

TEST_P(BlobPinContract, UnreferencedUnpinnedBytesAreReclaimed) {
  int removed = 0;
  EXPECT_TRUE(Reclaim(1000, removed));
  EXPECT_EQ(removed, 1);
}

TEST_P(BlobPinContract, ALivePinHoldsTheBytesUntilUnpinned) {
  int removed = 0;
  Must(store_->PinBlob(kSha, "w1/1", 5000));
  EXPECT_FALSE(Reclaim(1000, removed));
  Must(store_->PinBlob(kSha, "w2/1", 5000));
  Must(store_->UnpinBlob(kSha, "w1/1"));
  EXPECT_FALSE(Reclaim(1000, removed));  // w2 still holds it
  Must(store_->UnpinBlob(kSha, "w2/1"));
  EXPECT_TRUE(Reclaim(1000, removed));
  EXPECT_EQ(removed, 1);
}

TEST_P(BlobPinContract, AnExpiredPinHoldsNothingAndRepinningMovesTheExpiry) {
  int removed = 0;
  Must(store_->PinBlob(kSha, "w1/1", 2000));
  Must(store_->PinBlob(kSha, "w1/1", 4000));
  EXPECT_FALSE(Reclaim(3000, removed));
  EXPECT_TRUE(Reclaim(4000, removed));
}

TEST_P(BlobPinContract, ReferencedBytesAreNotReclaimed) {
  auto group = test::Group("p1", "g", 1);
  auto package = Package("p1", "g", "a.py", 1);
  package.sha256 = kSha;
  Must(store_->ReplaceGroup(group, {package}));
  int removed = 0;
  EXPECT_FALSE(Reclaim(1000, removed));
  Must(store_->DeletePackage("p1", "g", "a.py"));
  EXPECT_TRUE(Reclaim(1000, removed));
  EXPECT_EQ(removed, 1);
}

TEST_P(BlobPinContract, AFailedRemoveIsReportedAndTheBlobStaysReclaimable) {
  auto failed = store_->ReclaimBlob(kSha, 1000, [] { return Fail(ErrorCode::kInternal, "down"); });
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().message, "down");
  int removed = 0;
  EXPECT_TRUE(Reclaim(1000, removed));
}

// Two instances race: one commits bytes and pins them, the other reclaims. Whenever the
// uploader's check after its pin finds the bytes present, they must stay present until it
// unpins; no interleaving may remove them in between.
TEST_P(BlobPinContract, APinThatSawTheBytesKeepsThemAgainstAConcurrentReclaim) {
  auto other = Must(backend_->Connect()).metadata;
  int kept = 0;
  for (int round = 0; round < 100; ++round) {
    std::atomic<bool> present{true};
    std::thread reclaimer([&] {
      (void)other->ReclaimBlob(kSha, 1000, [&]() -> Result<void> {
        present = false;
        return {};
      });
    });
    const std::string pin = "up/" + std::to_string(round);
    Must(store_->PinBlob(kSha, pin, 5000));
    const bool saw = present;
    reclaimer.join();
    if (saw) {
      EXPECT_TRUE(present) << "round " << round << ": bytes removed after the pin saw them";
      ++kept;
    }
    Must(store_->UnpinBlob(kSha, pin));
  }
  RecordProperty("rounds_where_pin_won", kept);
}

INSTANTIATE_TEST_SUITE_P(Backends, BlobPinContract, ::testing::ValuesIn(test::StoreBackends()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace dlipkg
