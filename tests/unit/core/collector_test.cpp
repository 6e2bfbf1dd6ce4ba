// Issue 15: the reclaim queue (a delete during a blob store outage forgets nothing), the
// collector's grace rule on the settable clock (bug 5), its lease, and the upload whose bytes
// another instance's delete removes while it commits.
#include "core/collector.hpp"

#include <gtest/gtest.h>

#include "core/package_service.hpp"
#include "testing/fakes.hpp"

namespace dlipkg {
namespace {

using namespace std::chrono_literals;
using testing::FakeBlobStore;

// The fake blob store, whose removals fail while `down` (a bucket outage).
class OutageBlobStore final : public BlobStore {
 public:
  explicit OutageBlobStore(BlobStore& inner) : inner_(inner) {}
  Result<std::unique_ptr<BlobWriter>> Create() override { return inner_.Create(); }
  Result<std::unique_ptr<BlobReader>> Open(const std::string& sha) override {
    return inner_.Open(sha);
  }
  Result<bool> Exists(const std::string& sha) override { return inner_.Exists(sha); }
  Result<void> Remove(const std::string& sha) override {
    if (down) return Fail(ErrorCode::kInternal, "blob store failure: the bucket is down", true);
    return inner_.Remove(sha);
  }
  Result<std::vector<std::string>> List() override { return inner_.List(); }
  Result<std::size_t> SweepTemporaries(std::chrono::milliseconds min_age) override {
    return inner_.SweepTemporaries(min_age);
  }
  std::atomic<bool> down{false};

 private:
  BlobStore& inner_;
};

// Another instance on the same stores, whose reclaim runs right before this instance's first
// PinBlob: the delete of the last package with the same bytes wins the race to the blob lock.
class ReclaimBeforePin final : public MetadataStore {
 public:
  ReclaimBeforePin(MetadataStore& inner, BlobStore& blobs) : inner_(inner), blobs_(blobs) {}
  Result<GroupRecord> ReplaceGroup(const GroupRecord& g, const std::vector<PackageRecord>& p,
                                   std::vector<std::string>* replaced = nullptr,
                                   const BlobCheck* check = nullptr) override {
    return inner_.ReplaceGroup(g, p, replaced, check);
  }
  Result<GroupRecord> MergeIntoGroup(const GroupRecord& g, const std::vector<PackageRecord>& p,
                                     std::vector<std::string>* replaced = nullptr,
                                     const BlobCheck* check = nullptr) override {
    return inner_.MergeIntoGroup(g, p, replaced, check);
  }
  Result<std::vector<PackageRecord>> PutUngrouped(const std::vector<PackageRecord>& p,
                                                  std::vector<std::string>* replaced = nullptr,
                                                  const BlobCheck* check = nullptr) override {
    return inner_.PutUngrouped(p, replaced, check);
  }
  Result<std::optional<PackageRecord>> GetPackage(const std::string& project,
                                                  const std::string& group,
                                                  const std::string& name) override {
    return inner_.GetPackage(project, group, name);
  }
  Result<std::optional<GroupRecord>> GetGroup(const std::string& project,
                                              const std::string& name) override {
    return inner_.GetGroup(project, name);
  }
  Result<ProjectContents> ListProject(const std::string& project) override {
    return inner_.ListProject(project);
  }
  Result<PackagePage> ListPage(const PageRequest& request) override {
    return inner_.ListPage(request);
  }
  Result<std::vector<PackageRecord>> ListUngrouped(const std::string& project,
                                                   const PackageFilter& filter,
                                                   const std::string& after_name,
                                                   std::size_t limit) override {
    return inner_.ListUngrouped(project, filter, after_name, limit);
  }
  Result<GroupBatch> ListGroups(const std::string& project, const PackageFilter& filter,
                                const std::string& after_group, std::size_t max_groups) override {
    return inner_.ListGroups(project, filter, after_group, max_groups);
  }
  std::unique_ptr<GroupWalk> WalkGroups(const std::string& project, const PackageFilter& filter,
                                        std::size_t max_groups) override {
    return inner_.WalkGroups(project, filter, max_groups);
  }
  Result<PackageRecord> DeletePackage(const std::string& project, const std::string& group,
                                      const std::string& name) override {
    return inner_.DeletePackage(project, group, name);
  }
  Result<void> SetGroupOwner(const std::string& project, const std::string& group,
                             const std::string& owner, std::int64_t now) override {
    return inner_.SetGroupOwner(project, group, owner, now);
  }
  Result<void> SetPackageOwner(const std::string& project, const std::string& group,
                               const std::string& name, const std::string& owner,
                               std::int64_t now) override {
    return inner_.SetPackageOwner(project, group, name, owner, now);
  }
  Result<void> MarkCorrupt(const std::string& project, const std::string& group,
                           const std::string& name, const std::string& sha,
                           const std::string& reason, std::int64_t now) override {
    return inner_.MarkCorrupt(project, group, name, sha, reason, now);
  }
  Result<bool> IsBlobReferenced(const std::string& sha) override {
    return inner_.IsBlobReferenced(sha);
  }
  Result<std::vector<std::string>> ReferencedBlobs() override { return inner_.ReferencedBlobs(); }
  Result<void> PinBlob(const std::string& sha, const std::string& pin_id,
                       std::int64_t until) override {
    if (!raced_) {
      raced_ = true;
      auto removed = inner_.ReclaimBlob(sha, 0, [&] { return blobs_.Remove(sha); });
      if (!removed || !*removed)
        return Fail(ErrorCode::kInternal, "the racing reclaim did not run");
    }
    return inner_.PinBlob(sha, pin_id, until);
  }
  Result<void> UnpinBlob(const std::string& sha, const std::string& pin_id) override {
    return inner_.UnpinBlob(sha, pin_id);
  }
  Result<bool> ReclaimBlob(const std::string& sha, std::int64_t now,
                           const std::function<Result<void>()>& remove) override {
    return inner_.ReclaimBlob(sha, now, remove);
  }
  Result<void> QueueReclaims(const std::vector<std::string>& shas) override {
    return inner_.QueueReclaims(shas);
  }
  Result<std::vector<QueuedReclaim>> DueReclaims(std::int64_t now, std::size_t limit) override {
    return inner_.DueReclaims(now, limit);
  }
  Result<void> DeferReclaim(const std::string& sha, std::int64_t next) override {
    return inner_.DeferReclaim(sha, next);
  }
  Result<bool> TakeCollectorLease(const std::string& owner, std::int64_t now,
                                  std::int64_t until) override {
    return inner_.TakeCollectorLease(owner, now, until);
  }
  Result<void> ReleaseCollectorLease(const std::string& owner) override {
    return inner_.ReleaseCollectorLease(owner);
  }
  Result<std::vector<std::string>> AbandonedBlobs(const std::vector<std::string>& stored,
                                                  std::int64_t now, std::int64_t grace) override {
    return inner_.AbandonedBlobs(stored, now, grace);
  }
  Result<std::size_t> DropExpiredPins(std::int64_t now) override {
    return inner_.DropExpiredPins(now);
  }

 private:
  MetadataStore& inner_;
  BlobStore& blobs_;
  bool raced_ = false;
};

class CollectorTest : public ::testing::Test {
 protected:
  static constexpr auto kGrace = 10min;
  std::string Store(std::string_view bytes) {
    auto writer = fake_blobs_.Create();
    EXPECT_TRUE((*writer)->Write(std::span<const char>(bytes.data(), bytes.size())));
    return (*writer)->Commit()->sha256;
  }
  PackageRecord Package(const std::string& name, const std::string& sha) {
    return PackageRecord{.project = "p1", .name = name, .sha256 = sha, .size = 1};
  }
  bool Stored(const std::string& sha) { return *fake_blobs_.Exists(sha); }
  CollectionReport Run(Collector& collector) {
    auto report = collector.RunOnce();
    EXPECT_TRUE(report) << report.error().message;
    return report.value_or(CollectionReport{});
  }

  testing::FakeMetadataStore metadata_;
  FakeBlobStore fake_blobs_;
  OutageBlobStore blobs_{fake_blobs_};
  testing::SettableClock clock_;
  testing::RecordingEventSink events_;
  BlobKeeper keeper_{metadata_, blobs_, clock_, events_, "one"};
  Collector collector_{metadata_, blobs_,  keeper_,
                       clock_,    events_, {.owner = "one", .interval = 1min, .grace = kGrace}};
};

// A delete during an outage used to forget the bytes: the row was gone, the removal failed and
// nothing tried again. Now the delete's own transaction queues them, and the collector's drain
// removes them once the store is back.
TEST_F(CollectorTest, ADeleteDuringAnOutageLeavesTheBlobQueuedUntilItIsRemoved) {
  const std::string sha = Store("pkg");
  ASSERT_TRUE(metadata_.PutUngrouped({Package("a.py", sha)}));
  blobs_.down = true;
  auto deleted = metadata_.DeletePackage("p1", "", "a.py");
  ASSERT_TRUE(deleted);
  EXPECT_EQ(keeper_.Reclaim({deleted->sha256}), 0u);
  EXPECT_TRUE(Stored(sha));
  EXPECT_EQ(metadata_.QueuedHashes(), std::vector<std::string>{sha});
  EXPECT_EQ(Run(collector_).deferred, 1u);  // still down: retried later, not dropped
  EXPECT_EQ(metadata_.QueuedHashes(), std::vector<std::string>{sha});
  blobs_.down = false;
  EXPECT_EQ(Run(collector_).reclaimed, 0u);  // backed off: not due yet
  clock_.Advance(1s);
  EXPECT_EQ(Run(collector_).reclaimed, 1u);
  EXPECT_FALSE(Stored(sha));
  EXPECT_TRUE(metadata_.QueuedHashes().empty());
}

// Between the delete and the drain, an upload of the same bytes made them referenced again:
// the drain re-checks under the blob's lock and keeps them.
TEST_F(CollectorTest, AQueuedBlobReferencedAgainIsKeptAndLeavesTheQueue) {
  const std::string sha = Store("pkg");
  ASSERT_TRUE(metadata_.PutUngrouped({Package("a.py", sha)}));
  ASSERT_TRUE(metadata_.DeletePackage("p1", "", "a.py"));
  ASSERT_TRUE(metadata_.PutUngrouped({Package("b.py", sha)}));
  EXPECT_EQ(Run(collector_).reclaimed, 0u);
  EXPECT_TRUE(Stored(sha));
  EXPECT_TRUE(metadata_.QueuedHashes().empty());
}

// Bug 5: an unreferenced blob goes only once the store has seen it unreferenced for the grace
// period; a store that has just been created (or pointed at by mistake) proves nothing.
TEST_F(CollectorTest, AnUnreferencedBlobGoesOnlyAfterTheRecordedGracePeriod) {
  const std::string kept = Store("referenced");
  const std::string orphan = Store("orphan");
  ASSERT_TRUE(metadata_.PutUngrouped({Package("a.py", kept)}));
  EXPECT_EQ(Run(collector_).blobs, 0u);  // first seen now
  clock_.Advance(kGrace - 1ms);
  EXPECT_EQ(Run(collector_).blobs, 0u);
  EXPECT_TRUE(Stored(orphan));
  clock_.Advance(1ms);
  const auto report = Run(collector_);
  EXPECT_TRUE(report.led);
  EXPECT_EQ(report.blobs, 1u);
  EXPECT_FALSE(Stored(orphan));
  EXPECT_TRUE(Stored(kept));
  ASSERT_EQ(events_.Of(EventKind::kCollected).size(), 1u);
  EXPECT_EQ(events_.Of(EventKind::kCollected)[0].operation, "blobs");
}

// A blob referenced in between starts its grace again when it is unreferenced later.
TEST_F(CollectorTest, AReferenceInBetweenRestartsTheGracePeriod) {
  const std::string sha = Store("bytes");
  EXPECT_EQ(Run(collector_).blobs, 0u);
  clock_.Advance(kGrace - 1min);
  ASSERT_TRUE(metadata_.PutUngrouped({Package("a.py", sha)}));
  EXPECT_EQ(Run(collector_).blobs, 0u);  // referenced: the sighting is forgotten
  ASSERT_TRUE(metadata_.DeletePackage("p1", "", "a.py"));
  clock_.Advance(1min);
  // The delete queued it, so the drain takes it at once: deletes need no grace.
  EXPECT_EQ(Run(collector_).reclaimed, 1u);
  EXPECT_FALSE(Stored(sha));
}

// A live pin (an upload between its bytes and its metadata commit) keeps a blob however long;
// once the pin runs out and is dropped, the grace period starts.
TEST_F(CollectorTest, APinnedBlobIsNotAbandonedAndAnExpiredPinIsDropped) {
  const std::string sha = Store("uploading");
  ASSERT_TRUE(metadata_.PinBlob(sha, "dead/1", clock_.NowMs() + kGrace.count() * 2));
  EXPECT_EQ(Run(collector_).blobs, 0u);
  clock_.Advance(kGrace * 2);
  EXPECT_EQ(Run(collector_).pins, 1u);
  EXPECT_EQ(metadata_.PinCount(), 0u);
  EXPECT_TRUE(Stored(sha));
  clock_.Advance(kGrace);
  EXPECT_EQ(Run(collector_).blobs, 1u);
  EXPECT_FALSE(Stored(sha));
}

TEST_F(CollectorTest, CrashedTemporariesAreSwept) {
  fake_blobs_.LeaveCrashedTemporary();
  EXPECT_EQ(Run(collector_).temporaries, 1u);
  EXPECT_EQ(fake_blobs_.Temporaries(), 0u);
}

// One instance at a time: a second collector drains the queue but does not collect while the
// first one's lease lasts, and takes over when it runs out or is released.
TEST_F(CollectorTest, OnlyTheLeaseHolderCollects) {
  BlobKeeper other_keeper{metadata_, blobs_, clock_, events_, "two"};
  Collector other{metadata_, blobs_,  other_keeper,
                  clock_,    events_, {.owner = "two", .interval = 1min, .grace = kGrace}};
  EXPECT_TRUE(Run(collector_).led);
  EXPECT_FALSE(Run(other).led);
  clock_.Advance(1min);
  EXPECT_TRUE(Run(collector_).led);  // the holder renews
  clock_.Advance(2min);
  EXPECT_TRUE(Run(other).led);  // the holder stopped renewing: taken over
  EXPECT_FALSE(Run(collector_).led);
  other.Stop();  // releases the lease
  EXPECT_TRUE(Run(collector_).led);
}

// The loop waits on the injected clock: a pass per interval.
TEST_F(CollectorTest, TheLoopRunsAPassEachInterval) {
  const std::string sha = Store("pkg");
  ASSERT_TRUE(metadata_.QueueReclaims({sha}));
  collector_.Start();
  EXPECT_TRUE(Stored(sha));
  // The loop may not be waiting yet when the clock first moves: move it until a pass ran.
  bool reclaimed = false;
  for (int i = 0; i < 500 && !reclaimed; ++i) {
    clock_.Advance(1min);
    reclaimed = events_.WaitFor(EventKind::kBlobReclaimed, 1, 10ms);
  }
  EXPECT_TRUE(reclaimed);
  collector_.Stop();
  EXPECT_FALSE(Stored(sha));
}

// Issue 15: an upload whose bytes already existed lost them to another instance's delete
// between its commit (which kept the existing copy) and its pin, and failed with 500. Now the
// pin comes first, so the commit finds no copy and writes the bytes it holds.
TEST(CommitPinnedTest, BytesReclaimedByAnotherInstanceJustBeforeThePinAreWrittenAgain) {
  testing::FakeMetadataStore store;
  FakeBlobStore blobs;
  ReclaimBeforePin racing(store, blobs);
  testing::SettableClock clock;
  testing::RecordingEventSink events;
  BlobKeeper keeper(racing, blobs, clock, events, "one");
  auto existing = blobs.Create();
  ASSERT_TRUE((*existing)->Write(std::string_view("shared bytes")));
  const std::string sha = (*existing)->Commit()->sha256;  // unreferenced: reclaimable
  auto writer = blobs.Create();
  ASSERT_TRUE((*writer)->Write(std::string_view("shared bytes")));
  HeldBlob held;
  auto committed = keeper.CommitPinned(**writer, &held);
  ASSERT_TRUE(committed) << committed.error().message;
  EXPECT_EQ(committed->sha256, sha);
  EXPECT_EQ(blobs.Exists(sha), true);
  EXPECT_EQ(keeper.Reclaim({sha}), 0u);  // pinned until the upload's commit
  keeper.Unpin({held});
}

}  // namespace
}  // namespace dlipkg
