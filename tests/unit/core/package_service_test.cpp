#include "core/package_service.hpp"

#include <gtest/gtest.h>

#include "testing/fail_nth.hpp"
#include "testing/fakes.hpp"

namespace dlipkg {
namespace {

using testing::FakeBlobStore;
using testing::PackageAt;
using testing::Valid;

class PackageServiceTest : public ::testing::Test {
 protected:
  PackageServiceTest() {
    for (const char* name : {"a.py", "b.py", "c.py", "same1.py", "same2.py", "lib.jar"})
      fetcher_.Serve(Url(name), std::string("bytes of ") + name);
    fetcher_.Serve(Url("same1.py"), "same");
    fetcher_.Serve(Url("same2.py"), "same");
  }
  static std::string Url(const std::string& name) { return "http://src/" + name; }
  UploadCommand Typed(std::vector<std::string> names, std::string group = "g",
                      GroupMode mode = GroupMode::kReplace) {
    std::vector<std::string> urls;
    for (auto& n : names) urls.push_back(Url(n));
    return testing::UploadOf(urls, PackageKind::kPyFile, group, mode);
  }
  std::string Content(const std::string& group, const std::string& name) {
    return testing::ContentOf(service_, "p1", group, name);
  }

  testing::FakeMetadataStore metadata_;
  testing::FakeJobQueue jobs_{metadata_};
  FakeBlobStore blobs_;
  testing::FakeFetcher fetcher_;
  testing::SettableClock clock_;
  testing::RecordingEventSink events_;
  BlobKeeper keeper_{metadata_, blobs_, clock_, events_, "test"};
  WorkerPool pool_{3};
  PackageService service_{
      ServicePorts{metadata_, jobs_, blobs_, fetcher_, clock_, keeper_, pool_, events_},
      ServiceOptions{.max_queued_jobs = 5}};
};

TEST_F(PackageServiceTest, ReplaceHoldsExactlyTheNewPackagesAndReclaimsOldBytes) {
  auto first = service_.Upload(Typed({"a.py", "b.py"}));
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->group->packages.size(), 2u);
  EXPECT_EQ(blobs_.Count(), 2u);
  clock_.Advance(std::chrono::milliseconds(1));
  auto second = service_.Upload(Typed({"c.py"}));
  ASSERT_TRUE(second);
  ASSERT_EQ(second->group->packages.size(), 1u);
  EXPECT_EQ(second->group->packages[0].name, "c.py");
  EXPECT_EQ(second->group->create_time, first->group->create_time);
  EXPECT_GT(second->group->update_time, first->group->update_time);
  EXPECT_EQ(blobs_.Count(), 1u);  // a.py and b.py bytes reclaimed
  EXPECT_EQ(Content("g", "c.py"), "bytes of c.py");
}

TEST_F(PackageServiceTest, AFailingPathLeavesTheOldGroupAndNoNewBytes) {
  ASSERT_TRUE(service_.Upload(Typed({"a.py"})));
  fetcher_.Fail(Url("b.py"), Error{ErrorCode::kSourceUnavailable, "b.py: not found (HTTP 404)"});
  auto failed = service_.Upload(Typed({"c.py", "b.py"}));
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, ErrorCode::kSourceUnavailable);
  EXPECT_NE(failed.error().message.find("b.py"), std::string::npos);
  auto group = metadata_.GetGroup("p1", "g");
  ASSERT_EQ((*group)->packages.size(), 1u);
  EXPECT_EQ((*group)->packages[0].name, "a.py");
  EXPECT_EQ(blobs_.Count(), 1u);  // c.py's bytes were not kept
}

TEST_F(PackageServiceTest, MergeReplacesByNameAndKeepsOthers) {
  ASSERT_TRUE(service_.Upload(Typed({"a.py", "b.py"})));
  fetcher_.Serve(Url("a.py"), "new a");
  auto merged = service_.Upload(Typed({"a.py", "c.py"}, "g", GroupMode::kMerge));
  ASSERT_TRUE(merged);
  std::vector<std::string> names;
  for (const auto& p : merged->group->packages) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{"a.py", "b.py", "c.py"}));
  EXPECT_EQ(merged->packages.size(), 2u);
  EXPECT_EQ(Content("g", "a.py"), "new a");
  EXPECT_EQ(blobs_.Count(), 3u);  // old a.py bytes reclaimed
}

TEST_F(PackageServiceTest, SharedBytesStayUntilTheLastReferenceGoes) {
  ASSERT_TRUE(service_.Upload(Typed({"same1.py", "same2.py"})));
  EXPECT_EQ(blobs_.Count(), 1u);
  ASSERT_TRUE(service_.Delete(PackageAt("p1", "g", "same1.py")));
  EXPECT_EQ(Content("g", "same2.py"), "same");
  ASSERT_TRUE(service_.Delete(PackageAt("p1", "g", "same2.py")));
  EXPECT_EQ(blobs_.Count(), 0u);
  EXPECT_EQ(service_.Delete(PackageAt("p1", "g", "same2.py")).error().code, ErrorCode::kNotFound);
}

TEST_F(PackageServiceTest, UngroupedUploadsAndShow) {
  auto command = Typed({"lib.jar"});
  command.group.reset();
  command.kind = PackageKind::kJar;
  auto result = service_.Upload(command);
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->group);
  ASSERT_EQ(result->packages.size(), 1u);
  auto shown = service_.Show(PackageAt("p1", "", "lib.jar"));
  ASSERT_TRUE(shown);
  EXPECT_EQ(shown->kind, PackageKind::kJar);
  EXPECT_EQ(shown->owner, "alice");
  EXPECT_EQ(service_.Show(PackageAt("p1", "g", "lib.jar")).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(service_.Show(PackageAt("p2", "", "lib.jar")).error().code, ErrorCode::kNotFound);
}

TEST_F(PackageServiceTest, ListFiltersByKindAndTagsAndPages) {
  auto py = Typed({"a.py", "b.py"}, "py");
  py.tags = TagList::Parse({{"team", "x"}}).value();
  ASSERT_TRUE(service_.Upload(py));
  auto jar = Typed({"lib.jar"}, "jv");
  jar.kind = PackageKind::kJar;
  ASSERT_TRUE(service_.Upload(jar));

  auto all = service_.List({.project = Valid<ProjectId>("p1")});
  ASSERT_TRUE(all);
  EXPECT_EQ(all->total, 3u);
  ASSERT_EQ(all->groups.size(), 2u);
  EXPECT_EQ(all->groups[0].name, "jv");  // by name

  auto jars = service_.List({.project = Valid<ProjectId>("p1"), .kind = PackageKind::kJar});
  EXPECT_EQ(jars->total, 1u);
  ASSERT_EQ(jars->groups.size(), 1u);
  EXPECT_EQ(jars->groups[0].name, "jv");

  auto tagged = service_.List({.project = Valid<ProjectId>("p1"), .tags = {{"team", "x"}}});
  EXPECT_EQ(tagged->total, 2u);
  EXPECT_EQ(
      service_.List({.project = Valid<ProjectId>("p1"), .tags = {{"team", std::nullopt}}})->total,
      2u);
  EXPECT_EQ(service_.List({.project = Valid<ProjectId>("p1"), .tags = {{"team", "y"}}})->total, 0u);

  auto page = service_.List({.project = Valid<ProjectId>("p1"), .limit = 2, .offset = 1});
  EXPECT_EQ(page->total, 3u);
  ASSERT_EQ(page->groups.size(), 1u);  // jv/lib.jar is first; page holds py/a.py, py/b.py
  EXPECT_EQ(page->groups[0].name, "py");
  EXPECT_EQ(page->groups[0].packages.size(), 2u);
}

TEST_F(PackageServiceTest, ListSearchesPackageAndGroupNames) {
  ASSERT_TRUE(service_.Upload(Typed({"a.py", "b.py"}, "etl")));
  ASSERT_TRUE(service_.Upload(Typed({"c.py"}, "jobs")));
  auto by_package = service_.List({.project = Valid<ProjectId>("p1"), .name_contains = "b."});
  ASSERT_TRUE(by_package);
  EXPECT_EQ(by_package->total, 1u);
  ASSERT_EQ(by_package->groups.size(), 1u);
  EXPECT_EQ(by_package->groups[0].packages.at(0).name, "b.py");
  auto by_group = service_.List({.project = Valid<ProjectId>("p1"), .name_contains = "jo"});
  ASSERT_EQ(by_group->groups.size(), 1u);
  EXPECT_EQ(by_group->groups[0].name, "jobs");
  EXPECT_EQ(service_.List({.project = Valid<ProjectId>("p1"), .name_contains = "ETL"})->total,
            0u);  // exact case
  EXPECT_EQ(
      service_.List({.project = Valid<ProjectId>("p1"), .name_contains = "zz"})->groups.size(), 0u);
}

TEST_F(PackageServiceTest, ChangeOwner) {
  ASSERT_TRUE(service_.Upload(Typed({"a.py", "b.py"})));
  const auto p1 = Valid<ProjectId>("p1");
  const auto g = Valid<GroupName>("g");
  const auto a = Valid<ResourceName>("a.py");
  ASSERT_TRUE(service_.ChangeOwner(p1, {g, std::nullopt}, Valid<OwnerName>("bobby")));
  EXPECT_EQ((*metadata_.GetGroup("p1", "g"))->owner, "bobby");
  EXPECT_EQ(service_.Show(PackageAt("p1", "g", "b.py"))->owner, "bobby");
  const auto carol = Valid<OwnerName>("carol");
  ASSERT_TRUE(service_.ChangeOwner(p1, {g, a}, carol));
  EXPECT_EQ(service_.Show(PackageAt("p1", "g", "a.py"))->owner, "carol");
  EXPECT_EQ(service_.ChangeOwner(p1, {Valid<GroupName>("nope"), std::nullopt}, carol).error().code,
            ErrorCode::kNotFound);
  EXPECT_EQ(service_.ChangeOwner(p1, {std::nullopt, a}, carol).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(service_.ChangeOwner(p1, {}, carol).error().code, ErrorCode::kBadRequest);
}

// Issue 15, bug 5's recorded grace period: the start-up sweep removes an unreferenced blob only
// once this metadata store has seen it unreferenced for the grace period (24 h by default).
TEST_F(PackageServiceTest, SweepRemovesAnUnreferencedBlobOnlyAfterTheGracePeriod) {
  ASSERT_TRUE(service_.Upload(Typed({"a.py"})));
  auto orphan = blobs_.Create();
  (void)(*orphan)->Write(std::span<const char>("orphan", 6));
  ASSERT_TRUE((*orphan)->Commit());
  EXPECT_EQ(blobs_.Count(), 2u);
  auto first = service_.Sweep();  // first seen unreferenced now
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->empty());
  clock_.Advance(std::chrono::hours(24) - std::chrono::milliseconds(1));
  auto early = service_.Sweep();
  ASSERT_TRUE(early);
  EXPECT_TRUE(early->empty());
  EXPECT_EQ(blobs_.Count(), 2u);
  clock_.Advance(std::chrono::milliseconds(1));
  auto removed = service_.Sweep();
  ASSERT_TRUE(removed);
  EXPECT_EQ(removed->size(), 1u);
  EXPECT_EQ(blobs_.Count(), 1u);
  EXPECT_EQ(Content("g", "a.py"), "bytes of a.py");
}

// Issue 15, bug 5: a start on an empty metadata store (deleted, truncated or mistyped) swept
// every blob. Now the sweep removes nothing and says why, unless told the store is meant empty.
TEST_F(PackageServiceTest, SweepOnAnEmptyStoreNextToBlobsRemovesNothing) {
  for (const char* bytes : {"one", "two"}) {
    auto blob = blobs_.Create();
    (void)(*blob)->Write(std::span<const char>(bytes, 3));
    ASSERT_TRUE((*blob)->Commit());
  }
  auto refused = service_.Sweep();
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kNotSupported);
  EXPECT_NE(refused.error().message.find("2 blob(s)"), std::string::npos);
  EXPECT_EQ(blobs_.Count(), 2u);
  auto allowed = service_.Sweep(/*empty_store_expected=*/true);
  ASSERT_TRUE(allowed);
  EXPECT_TRUE(allowed->empty());
  EXPECT_EQ(blobs_.Count(), 2u);
}

}  // namespace
}  // namespace dlipkg

namespace dlipkg {
namespace {

class BlobKeeperTest : public ::testing::Test {
 protected:
  BlobInfo Commit(const std::string& bytes, HeldBlob* held = nullptr) {
    auto writer = blobs_.Create();
    (void)(*writer)->Write(std::span<const char>(bytes.data(), bytes.size()));
    HeldBlob hold;
    auto blob = keeper_.CommitPinned(**writer, &hold);
    EXPECT_TRUE(blob) << blob.error().message;
    if (held != nullptr) *held = hold;
    return *blob;
  }
  testing::FakeMetadataStore metadata_;
  testing::FakeBlobStore blobs_;
  testing::SettableClock clock_;
  testing::RecordingEventSink events_;
  BlobKeeper keeper_{metadata_, blobs_, clock_,
                     events_,   "w1",   std::chrono::milliseconds(1'000'000)};
};

TEST_F(BlobKeeperTest, APinnedBlobIsNotReclaimedUntilUnpinned) {
  HeldBlob held;
  const auto blob = Commit("bytes", &held);
  keeper_.Reclaim({blob.sha256});
  EXPECT_TRUE(*blobs_.Exists(blob.sha256));
  keeper_.Unpin({held});
  EXPECT_EQ(metadata_.PinCount(), 0u);
  keeper_.Reclaim({blob.sha256});
  EXPECT_FALSE(*blobs_.Exists(blob.sha256));
  const auto reclaimed = events_.Of(EventKind::kBlobReclaimed);
  ASSERT_EQ(reclaimed.size(), 1u);
  EXPECT_EQ(reclaimed[0].sha256, blob.sha256);
}

TEST_F(BlobKeeperTest, TwoUploadsOfTheSameBytesHoldTwoPins) {
  HeldBlob first_held, second_held;
  const auto first = Commit("same", &first_held);
  const auto second = Commit("same", &second_held);
  ASSERT_EQ(first.sha256, second.sha256);
  keeper_.Unpin({first_held});
  keeper_.Reclaim({first.sha256});
  EXPECT_TRUE(*blobs_.Exists(first.sha256));  // the other upload still holds it
  keeper_.Unpin({second_held});
  keeper_.Reclaim({first.sha256});
  EXPECT_FALSE(*blobs_.Exists(first.sha256));
}

// The pin's release goes into the commit that refers to the bytes (one write, not two): a
// live pin is released there; one that ran out makes the commit look at the bytes, and bytes
// another instance reclaimed meanwhile fail it, retryably, with nothing written.
TEST_F(BlobKeeperTest, TheCommitReleasesThePinAndRefusesBytesReclaimedAfterItRanOut) {
  HeldBlob held;
  const auto blob = Commit("bytes", &held);
  const BlobCheck check = keeper_.CheckFor({held});
  auto package = PackageRecord{.project = "p", .name = "a.py", .sha256 = blob.sha256};
  ASSERT_TRUE(metadata_.PutUngrouped({package}, nullptr, &check));
  EXPECT_EQ(metadata_.PinCount(), 0u);  // released by the commit itself
  keeper_.Committed({held});

  BlobKeeper short_pins{metadata_, blobs_, clock_, events_, "w2", std::chrono::milliseconds(1)};
  auto writer = blobs_.Create();
  (void)(*writer)->Write(std::span<const char>("other", 5));
  HeldBlob other;
  auto fresh = short_pins.CommitPinned(**writer, &other);
  ASSERT_TRUE(fresh);
  clock_.Advance(std::chrono::milliseconds(10));  // the pin ran out: another instance reclaims
  (void)blobs_.Remove(fresh->sha256);
  const BlobCheck late = short_pins.CheckFor({other});
  package.name = "b.py";
  package.sha256 = fresh->sha256;
  auto refused = metadata_.PutUngrouped({package}, nullptr, &late);
  ASSERT_FALSE(refused);
  EXPECT_TRUE(refused.error().retryable);
  EXPECT_FALSE(*metadata_.GetPackage("p", "", "b.py"));
  short_pins.Unpin({other});
}

// A single-instance store keeps holds in memory only: no pin is written, and a reclaim that
// meets a held blob leaves it in the reclaim queue, so it goes once the upload fails.
TEST_F(BlobKeeperTest, ProcessHoldsWriteNoPinAndLeaveASkippedReclaimQueued) {
  BlobKeeper local{metadata_,         blobs_, clock_, events_, "w4", std::chrono::minutes(30),
                   PinScope::kProcess};
  auto writer = blobs_.Create();
  (void)(*writer)->Write(std::span<const char>("local", 5));
  HeldBlob held;
  auto blob = local.CommitPinned(**writer, &held);
  ASSERT_TRUE(blob);
  EXPECT_EQ(metadata_.PinCount(), 0u);
  EXPECT_TRUE(local.CheckFor({held}).pins.empty());
  EXPECT_EQ(local.Reclaim({blob->sha256}), 0u);
  EXPECT_TRUE(*blobs_.Exists(blob->sha256));
  EXPECT_EQ(metadata_.QueuedHashes(), std::vector<std::string>{blob->sha256});
  auto round = local.DrainQueue(10, std::chrono::seconds(1));
  ASSERT_TRUE(round);
  EXPECT_EQ(round->removed, 0u);  // still held: deferred
  local.Unpin({held});            // the upload failed
  clock_.Advance(std::chrono::seconds(2));
  round = local.DrainQueue(10, std::chrono::seconds(1));
  ASSERT_TRUE(round);
  EXPECT_EQ(round->removed, 1u);
  EXPECT_FALSE(*blobs_.Exists(blob->sha256));
  EXPECT_TRUE(metadata_.QueuedHashes().empty());
}

TEST_F(BlobKeeperTest, ExpiredPinsDoNotHoldBytes) {
  BlobKeeper short_pins{metadata_, blobs_, clock_, events_, "w2", std::chrono::milliseconds(1)};
  auto writer = blobs_.Create();
  (void)(*writer)->Write(std::span<const char>("x", 1));
  HeldBlob held;
  auto blob = short_pins.CommitPinned(**writer, &held);
  ASSERT_TRUE(blob);
  // The uploader died without unpinning: its pin has run out (and its process hold is gone).
  clock_.Advance(std::chrono::milliseconds(10));
  BlobKeeper other{metadata_, blobs_, clock_, events_, "w9"};
  other.Reclaim({blob->sha256});
  EXPECT_FALSE(*blobs_.Exists(blob->sha256));
}

// What the keeper cannot return it reports: a reclaim and an unpin that failed.
TEST_F(BlobKeeperTest, FailuresNobodyWaitsForAreReported) {
  testing::FailNth fail(1, Error{ErrorCode::kInternal, "store down"}, "ReclaimBlob");
  testing::FailNthMetadataStore failing(metadata_, fail);
  testing::FailNth fail_unpin(1, Error{ErrorCode::kInternal, "store down"}, "UnpinBlob");
  testing::FailNthMetadataStore failing_unpin(failing, fail_unpin);
  BlobKeeper keeper{failing_unpin, blobs_, clock_, events_, "w3"};
  auto writer = blobs_.Create();
  (void)(*writer)->Write(std::span<const char>("y", 1));
  HeldBlob held;
  auto blob = keeper.CommitPinned(**writer, &held);
  ASSERT_TRUE(blob) << blob.error().message;
  keeper.Unpin({held});
  keeper.Reclaim({blob->sha256});
  const auto errors = events_.Of(EventKind::kStoreError);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].operation, "unpin blob");
  EXPECT_EQ(errors[1].operation, "reclaim blob");
  EXPECT_EQ(errors[1].sha256, blob->sha256);
  EXPECT_EQ(errors[1].cause, "store down (queued for a later attempt)");
  EXPECT_TRUE(*blobs_.Exists(blob->sha256));
  // Not forgotten (issue 15): the reclaim queue keeps it for the collector's next round.
  EXPECT_EQ(metadata_.QueuedHashes(), std::vector<std::string>{blob->sha256});
}

}  // namespace
}  // namespace dlipkg
