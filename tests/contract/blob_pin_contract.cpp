// Contract of MetadataStore's blob pins (PinBlob, UnpinBlob, ReclaimBlob), run against every
// store backend: what keeps bytes an upload has just committed from being reclaimed by another
// instance before its package refers to them.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

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

// ---- The reclaim queue (issue 15): reclamation that a crash or an outage cannot forget ----

std::vector<std::string> Queued(MetadataStore& store, std::int64_t now = 0) {
  std::vector<std::string> out;
  for (const auto& row : Must(store.DueReclaims(now, 100))) out.push_back(row.sha256);
  return out;
}

PackageRecord WithSha(PackageRecord p, const std::string& sha) {
  p.sha256 = sha;
  return p;
}

TEST_P(BlobPinContract, DroppingTheLastReferenceQueuesTheBlobInTheSameCall) {
  const auto group = test::Group("p1", "g", 1);
  Must(store_->ReplaceGroup(group, {WithSha(Package("p1", "g", "a.py", 1), kSha),
                                    WithSha(Package("p1", "g", "b.py", 1), kSha)}));
  Must(store_->PutUngrouped({WithSha(Package("p1", "", "c.py", 1), kSha)}));
  Must(store_->DeletePackage("p1", "g", "a.py"));
  EXPECT_TRUE(Queued(*store_).empty());  // b.py and c.py still refer to it
  Must(store_->DeletePackage("p1", "", "c.py"));
  EXPECT_TRUE(Queued(*store_).empty());
  const std::string other(64, 'b');
  // Replacing the group drops b.py, the last reference.
  std::vector<std::string> replaced;
  Must(store_->ReplaceGroup(group, {WithSha(Package("p1", "g", "d.py", 1), other)}, &replaced));
  EXPECT_EQ(replaced, std::vector<std::string>{kSha});
  EXPECT_EQ(Queued(*store_), std::vector<std::string>{kSha});
}

TEST_P(BlobPinContract, MergeAndPutUngroupedQueueWhatTheyReplace) {
  const std::string other(64, 'b'), third(64, 'c');
  Must(store_->MergeIntoGroup(test::Group("p1", "g", 1),
                              {WithSha(Package("p1", "g", "a.py", 1), kSha)}));
  Must(store_->PutUngrouped({WithSha(Package("p1", "", "u.py", 1), other)}));
  Must(store_->MergeIntoGroup(test::Group("p1", "g", 1),
                              {WithSha(Package("p1", "g", "a.py", 1), third)}));
  Must(store_->PutUngrouped({WithSha(Package("p1", "", "u.py", 1), third)}));
  auto queued = Queued(*store_);
  std::sort(queued.begin(), queued.end());
  EXPECT_EQ(queued, (std::vector<std::string>{kSha, other}));
}

TEST_P(BlobPinContract, AQueuedBlobLeavesTheQueueWhenRemovedNotWhenTheRemovalFails) {
  Must(store_->QueueReclaims({kSha}));
  Must(store_->QueueReclaims({kSha}));  // once only
  EXPECT_EQ(Queued(*store_), std::vector<std::string>{kSha});
  ASSERT_FALSE(store_->ReclaimBlob(kSha, 1000, [] { return Fail(ErrorCode::kInternal, "down"); }));
  EXPECT_EQ(Queued(*store_), std::vector<std::string>{kSha});
  Must(store_->DeferReclaim(kSha, 5000));
  EXPECT_TRUE(Queued(*store_, 4999).empty());
  const auto due = Must(store_->DueReclaims(5000, 10));
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].attempts, 1);
  int removed = 0;
  EXPECT_TRUE(Reclaim(5000, removed));
  EXPECT_EQ(removed, 1);
  EXPECT_TRUE(Queued(*store_, 5000).empty());
}

TEST_P(BlobPinContract, AQueuedBlobReferencedAgainLeavesTheQueueAndAPinnedOneStays) {
  Must(store_->QueueReclaims({kSha}));
  Must(store_->PinBlob(kSha, "w1/1", 5000));
  int removed = 0;
  EXPECT_FALSE(Reclaim(1000, removed));
  EXPECT_EQ(Queued(*store_), std::vector<std::string>{kSha});  // the pin may run out
  Must(store_->PutUngrouped({WithSha(Package("p1", "", "a.py", 1), kSha)}));
  Must(store_->UnpinBlob(kSha, "w1/1"));  // the upload committed its package
  EXPECT_FALSE(Reclaim(1000, removed));
  EXPECT_EQ(removed, 0);
  EXPECT_TRUE(Queued(*store_).empty());  // whoever drops the reference queues it anew
}

TEST_P(BlobPinContract, DueReclaimsIsBoundedAndLeastAttemptedFirst) {
  std::vector<std::string> shas;
  for (char c : {'1', '2', '3'}) shas.emplace_back(64, c);
  Must(store_->QueueReclaims(shas));
  Must(store_->DeferReclaim(shas[0], 0));
  const auto due = Must(store_->DueReclaims(0, 2));
  ASSERT_EQ(due.size(), 2u);
  EXPECT_NE(due[0].sha256, shas[0]);
  EXPECT_NE(due[1].sha256, shas[0]);
}

// ---- The collector's lease and bug 5's recorded grace period ----

TEST_P(BlobPinContract, OneCollectorHoldsTheLeaseUntilItRunsOutOrIsReleased) {
  auto other = Must(backend_->Connect()).metadata;
  EXPECT_TRUE(Must(store_->TakeCollectorLease("one", 1000, 2000)));
  EXPECT_FALSE(Must(other->TakeCollectorLease("two", 1500, 2500)));
  EXPECT_TRUE(Must(store_->TakeCollectorLease("one", 1900, 3000)));  // renewed
  EXPECT_FALSE(Must(other->TakeCollectorLease("two", 2500, 3500)));
  EXPECT_TRUE(Must(other->TakeCollectorLease("two", 3000, 4000)));  // ran out: taken over
  EXPECT_FALSE(Must(store_->TakeCollectorLease("one", 3100, 4100)));
  Must(store_->ReleaseCollectorLease("one"));  // not its lease: nothing happens
  EXPECT_FALSE(Must(store_->TakeCollectorLease("one", 3200, 4200)));
  Must(other->ReleaseCollectorLease("two"));
  EXPECT_TRUE(Must(store_->TakeCollectorLease("one", 3300, 4300)));
}

// Many instances race for a free lease: exactly one wins.
TEST_P(BlobPinContract, OfCollectorsRacingForTheLeaseExactlyOneWins) {
  constexpr int kRacers = 4;
  std::vector<std::shared_ptr<MetadataStore>> stores;
  for (int i = 0; i < kRacers; ++i) stores.push_back(Must(backend_->Connect()).metadata);
  std::atomic<int> winners{0};
  std::vector<std::thread> racers;
  for (int i = 0; i < kRacers; ++i)
    racers.emplace_back([&, i] {
      if (Must(stores[i]->TakeCollectorLease("c" + std::to_string(i), 1000, 9000))) ++winners;
    });
  for (auto& racer : racers) racer.join();
  EXPECT_EQ(winners, 1);
}

TEST_P(BlobPinContract, ABlobIsAbandonedOnlyOnceSeenUnreferencedForTheGracePeriod) {
  const std::string referenced(64, 'b'), pinned(64, 'c');
  Must(store_->PutUngrouped({WithSha(Package("p1", "", "a.py", 1), referenced)}));
  Must(store_->PinBlob(pinned, "w1/1", 100'000));
  const std::vector<std::string> stored{kSha, referenced, pinned};
  EXPECT_TRUE(Must(store_->AbandonedBlobs(stored, 1000, 500)).empty());  // first seen at 1000
  EXPECT_TRUE(Must(store_->AbandonedBlobs(stored, 1499, 500)).empty());
  EXPECT_EQ(Must(store_->AbandonedBlobs(stored, 1500, 500)), std::vector<std::string>{kSha});
  // Referenced in between: the sighting is forgotten, and the grace starts again.
  Must(store_->PutUngrouped({WithSha(Package("p1", "", "b.py", 1), kSha)}));
  EXPECT_TRUE(Must(store_->AbandonedBlobs(stored, 2000, 500)).empty());
  Must(store_->DeletePackage("p1", "", "b.py"));
  EXPECT_TRUE(Must(store_->AbandonedBlobs(stored, 2100, 500)).empty());
  EXPECT_EQ(Must(store_->AbandonedBlobs(stored, 2600, 500)), std::vector<std::string>{kSha});
  // Removing the blob forgets its sighting: the same bytes stored again start afresh.
  int removed = 0;
  EXPECT_TRUE(Reclaim(2600, removed));
  EXPECT_TRUE(Must(store_->AbandonedBlobs({kSha}, 2700, 500)).empty());
}

TEST_P(BlobPinContract, ExpiredPinsAreDroppedAndLiveOnesKept) {
  Must(store_->PinBlob(kSha, "dead/1", 1000));
  Must(store_->PinBlob(kSha, "dead/2", 1500));
  Must(store_->PinBlob(kSha, "live/1", 5000));
  EXPECT_EQ(Must(store_->DropExpiredPins(1500)), 2u);
  int removed = 0;
  EXPECT_FALSE(Reclaim(1600, removed));  // the live pin holds it
  EXPECT_EQ(Must(store_->DropExpiredPins(1600)), 0u);
}

INSTANTIATE_TEST_SUITE_P(Backends, BlobPinContract, ::testing::ValuesIn(test::StoreBackends()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace dlipkg
