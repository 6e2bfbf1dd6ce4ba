// Contract of MetadataStore (ports/metadata_store.hpp), one suite run against every backend
// of store_backends.hpp; each test gets a fresh, empty store.
// Backend-specific checks (SQLite schema versions, files) follow the shared suite.

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <latch>
#include <memory>
#include <ostream>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "adapters/metadata/sqlite/sqlite_metadata_store.hpp"
#include "contract/record_helpers.hpp"
#include "contract/store_backends.hpp"
#include "ports/metadata_store.hpp"
#include "testing/temp_dir.hpp"

namespace dlipkg {
namespace {

namespace fs = std::filesystem;
using test::BackendFactory;
using test::Describe;
using test::Group;
using test::GroupNames;
using test::Must;
using test::Names;
using test::Package;
using test::TempDir;

// ---- Helpers ----

class MetadataStoreContract : public ::testing::TestWithParam<BackendFactory> {
 protected:
  void SetUp() override {
    if (const auto why = GetParam().skip_reason(); !why.empty()) GTEST_SKIP() << why;
    backend_ = GetParam().make();
    Reconnect();
  }

  void Reconnect() {
    store_.reset();
    store_ = Must(backend_->Connect()).metadata;
  }

  MetadataStore& store() { return *store_; }

  // The package as stored, or ends the test when absent.
  PackageRecord Stored(const std::string& project, const std::string& group,
                       const std::string& name) {
    auto found = Must(store().GetPackage(project, group, name));
    if (!found) throw std::runtime_error("package " + group + "/" + name + " absent");
    return *found;
  }

  GroupRecord StoredGroup(const std::string& project, const std::string& name) {
    auto found = Must(store().GetGroup(project, name));
    if (!found) throw std::runtime_error("group " + name + " absent");
    return *found;
  }

  std::unique_ptr<test::StoreBackend> backend_;  // outlives store_: declared first
  std::shared_ptr<MetadataStore> store_;
};

void ExpectNotFound(const Result<void>& result, const std::string& name) {
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kNotFound);
  EXPECT_NE(result.error().message.find(name), std::string::npos) << result.error().message;
}

// ---- Groups: replace and merge ----

TEST_P(MetadataStoreContract, ReplaceCreatesGroupWithPackagesInOrder) {
  const auto a = Package("p1", "g1", "b.py");
  const auto b = Package("p1", "g1", "a.py");
  const auto returned = Must(store().ReplaceGroup(Group("p1", "g1"), {a, b}));

  GroupRecord expected = Group("p1", "g1");
  expected.packages = {a, b};
  EXPECT_EQ(Describe(returned), Describe(expected));
  EXPECT_EQ(Describe(StoredGroup("p1", "g1")), Describe(expected));
  EXPECT_EQ(Describe(Stored("p1", "g1", "a.py")), Describe(b));
}

TEST_P(MetadataStoreContract, ReplaceKeepsCreateTimeAndHoldsExactlyTheNewPackages) {
  auto jar = Package("p1", "g1", "lib.jar");
  jar.kind = PackageKind::kJar;
  Must(store().ReplaceGroup(Group("p1", "g1", 1000),
                            {Package("p1", "g1", "a.py"), jar, Package("p1", "g1", "x.py")}));

  GroupRecord second = Group("p1", "g1", 2000);
  second.owner = "owner2";
  second.description = "second";
  const auto c = Package("p1", "g1", "c.py", 2000);
  const auto a = Package("p1", "g1", "a.py", 2000);
  const auto returned = Must(store().ReplaceGroup(second, {c, a}));

  GroupRecord expected = second;
  expected.create_time = 1000;
  expected.packages = {c, a};
  EXPECT_EQ(Describe(returned), Describe(expected));
  EXPECT_EQ(Describe(StoredGroup("p1", "g1")), Describe(expected));
  EXPECT_FALSE(Must(store().GetPackage("p1", "g1", "lib.jar")));
  EXPECT_FALSE(Must(store().GetPackage("p1", "g1", "x.py")));
}

// Issue 15: the hashes a write replaced come from the write's own transaction, so racing
// replacements of one group each reclaim exactly what they replaced.
TEST_P(MetadataStoreContract, WritesReportTheHashesTheyReplaced) {
  std::vector<std::string> replaced;
  Must(store().ReplaceGroup(Group("p1", "g1"), {Package("p1", "g1", "a.py")}, &replaced));
  EXPECT_TRUE(replaced.empty());
  Must(store().ReplaceGroup(Group("p1", "g1"),
                            {Package("p1", "g1", "b.py"), Package("p1", "g1", "c.py")}, &replaced));
  EXPECT_EQ(replaced, (std::vector<std::string>{"sha-of-a.py"}));
  replaced.clear();
  auto newer_b = Package("p1", "g1", "b.py");
  newer_b.sha256 = "sha-of-b2";
  Must(
      store().MergeIntoGroup(Group("p1", "g1"), {newer_b, Package("p1", "g1", "d.py")}, &replaced));
  EXPECT_EQ(replaced, (std::vector<std::string>{"sha-of-b.py"}));
  replaced.clear();
  Must(store().PutUngrouped({Package("p1", "", "u.py")}, &replaced));
  EXPECT_TRUE(replaced.empty());
  auto newer_u = Package("p1", "", "u.py");
  newer_u.sha256 = "sha-of-u2";
  Must(store().PutUngrouped({newer_u}, &replaced));
  EXPECT_EQ(replaced, (std::vector<std::string>{"sha-of-u.py"}));
}

template <class T>
Result<void> Drop(const Result<T>& result) {
  if (!result) return std::unexpected(result.error());
  return {};
}

// What replaced a separate unpin per upload (and the renewal before it): the commit releases
// the new blobs' pins itself, and asks for the bytes only of a pin that ran out; bytes found
// gone fail the commit, retryably, with nothing written (the pins stay for the caller's unpin).
TEST_P(MetadataStoreContract, ACommitReleasesItsPinsAndRefusesBytesGoneAfterOneRanOut) {
  std::set<std::string> gone{"sha-of-b.py"};
  std::vector<std::string> asked;
  Must(store().PinBlob("sha-of-a.py", "w/1", 9000));  // live at 5000
  Must(store().PinBlob("sha-of-b.py", "w/2", 4000));  // ran out at 5000
  const BlobCheck check{.pins = {{"sha-of-a.py", "w/1"}, {"sha-of-b.py", "w/2"}},
                        .now_ms = 5000,
                        .exists = [&](const std::string& sha) -> Result<bool> {
                          asked.push_back(sha);
                          return !gone.contains(sha);
                        }};
  const std::vector<PackageRecord> grouped{Package("p1", "g1", "a.py"),
                                           Package("p1", "g1", "b.py")};
  const std::vector<Result<void>> refused{
      Drop(store().ReplaceGroup(Group("p1", "g1"), grouped, nullptr, &check)),
      Drop(store().MergeIntoGroup(Group("p1", "g1"), grouped, nullptr, &check)),
      Drop(store().PutUngrouped({Package("p1", "", "b.py")}, nullptr, &check))};
  for (const auto& result : refused) {
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, ErrorCode::kInternal);
    EXPECT_TRUE(result.error().retryable);
  }
  EXPECT_FALSE(Must(store().GetGroup("p1", "g1")));
  EXPECT_FALSE(Must(store().GetPackage("p1", "", "b.py")));
  EXPECT_EQ(std::set<std::string>(asked.begin(), asked.end()),
            std::set<std::string>{"sha-of-b.py"});  // a live pin needs no look

  gone.clear();
  Must(store().MergeIntoGroup(Group("p1", "g1"), grouped, nullptr, &check));
  EXPECT_EQ(Names(StoredGroup("p1", "g1").packages), (std::vector<std::string>{"a.py", "b.py"}));
  // Released with the commit: once no package refers to the bytes, no pin keeps them.
  Must(store().DeletePackage("p1", "g1", "a.py"));
  EXPECT_TRUE(Must(store().ReclaimBlob("sha-of-a.py", 5000, [] { return Result<void>(); })));
}

TEST_P(MetadataStoreContract, ReplaceWithNoPackagesEmptiesTheGroup) {
  Must(store().ReplaceGroup(Group("p1", "g1"), {Package("p1", "g1", "a.py")}));
  const auto returned = Must(store().ReplaceGroup(Group("p1", "g1", 2000), {}));
  EXPECT_TRUE(returned.packages.empty());
  EXPECT_TRUE(StoredGroup("p1", "g1").packages.empty());
}

TEST_P(MetadataStoreContract, MergeReplacesSameNameKeepingCreateTimeAndPositionAndAppends) {
  Must(store().ReplaceGroup(
      Group("p1", "g1", 1000),
      {Package("p1", "g1", "a.py"), Package("p1", "g1", "b.py"), Package("p1", "g1", "c.py")}));

  GroupRecord merge = Group("p1", "g1", 2000);
  merge.owner = "owner2";  // an existing group keeps its owner and description
  merge.description = "ignored";
  auto new_b = Package("p1", "g1", "b.py", 2000);
  new_b.kind = PackageKind::kJar;
  new_b.sha256 = "sha-new-b";
  new_b.owner = "owner2";
  const auto d = Package("p1", "g1", "d.py", 2000);
  const auto returned = Must(store().MergeIntoGroup(merge, {new_b, d}));

  GroupRecord expected = Group("p1", "g1", 1000);
  expected.update_time = 2000;
  auto kept_b = new_b;
  kept_b.create_time = 1000;
  expected.packages = {Package("p1", "g1", "a.py"), kept_b, Package("p1", "g1", "c.py"), d};
  EXPECT_EQ(Describe(returned), Describe(expected));
  EXPECT_EQ(Describe(StoredGroup("p1", "g1")), Describe(expected));
}

TEST_P(MetadataStoreContract, MergeAppendsAfterTheLastEvenWhenEarlierOnesWereDeleted) {
  Must(store().ReplaceGroup(Group("p1", "g1"),
                            {Package("p1", "g1", "a.py"), Package("p1", "g1", "b.py")}));
  Must(store().DeletePackage("p1", "g1", "a.py"));
  Must(store().MergeIntoGroup(Group("p1", "g1", 2000), {Package("p1", "g1", "a.py", 2000)}));
  Must(store().MergeIntoGroup(Group("p1", "g1", 3000), {Package("p1", "g1", "c.py", 3000)}));
  EXPECT_EQ(Names(StoredGroup("p1", "g1").packages),
            (std::vector<std::string>{"b.py", "a.py", "c.py"}));
}

TEST_P(MetadataStoreContract, MergeCreatesAnAbsentGroup) {
  GroupRecord group = Group("p1", "g1", 5000);
  group.owner = "creator";
  group.description = "made by merge";
  const auto a = Package("p1", "g1", "a.py", 5000);
  const auto b = Package("p1", "g1", "b.py", 5000);
  const auto returned = Must(store().MergeIntoGroup(group, {a, b}));

  GroupRecord expected = group;
  expected.packages = {a, b};
  EXPECT_EQ(Describe(returned), Describe(expected));
  EXPECT_EQ(Describe(StoredGroup("p1", "g1")), Describe(expected));
}

// ---- Ungrouped packages ----

TEST_P(MetadataStoreContract, UngroupedPutGetAndReplaceKeepsCreateTime) {
  const auto x = Package("p1", "", "x.txt", 1000);
  const auto y = Package("p1", "", "y.txt", 1000);
  const auto returned = Must(store().PutUngrouped({x, y}));
  ASSERT_EQ(returned.size(), 2u);
  EXPECT_EQ(Describe(returned[0]), Describe(x));
  EXPECT_EQ(Describe(returned[1]), Describe(y));
  EXPECT_EQ(Describe(Stored("p1", "", "x.txt")), Describe(x));

  auto new_x = Package("p1", "", "x.txt", 2000);
  new_x.sha256 = "sha-new-x";
  new_x.kind = PackageKind::kFile;
  const auto replaced = Must(store().PutUngrouped({new_x}));
  auto expected = new_x;
  expected.create_time = 1000;
  ASSERT_EQ(replaced.size(), 1u);
  EXPECT_EQ(Describe(replaced[0]), Describe(expected));
  EXPECT_EQ(Describe(Stored("p1", "", "x.txt")), Describe(expected));
  EXPECT_EQ(Names(Must(store().ListProject("p1")).ungrouped),
            (std::vector<std::string>{"x.txt", "y.txt"}));
}

TEST_P(MetadataStoreContract, UngroupedAndGroupedPackagesOfOneNameAreDistinct) {
  auto grouped = Package("p1", "g1", "a.py");
  grouped.sha256 = "sha-grouped";
  Must(store().ReplaceGroup(Group("p1", "g1"), {grouped}));
  Must(store().PutUngrouped({Package("p1", "", "a.py")}));
  EXPECT_EQ(Stored("p1", "g1", "a.py").sha256, "sha-grouped");
  EXPECT_EQ(Stored("p1", "", "a.py").sha256, "sha-of-a.py");

  Must(store().DeletePackage("p1", "", "a.py"));
  EXPECT_FALSE(Must(store().GetPackage("p1", "", "a.py")));
  EXPECT_EQ(Stored("p1", "g1", "a.py").sha256, "sha-grouped");
}

// ---- Reading ----

TEST_P(MetadataStoreContract, ProjectsAreIsolated) {
  Must(store().ReplaceGroup(Group("p1", "g1"), {Package("p1", "g1", "a.py")}));
  Must(store().PutUngrouped({Package("p1", "", "u.txt")}));

  EXPECT_FALSE(Must(store().GetGroup("p2", "g1")));
  EXPECT_FALSE(Must(store().GetPackage("p2", "g1", "a.py")));
  EXPECT_FALSE(Must(store().GetPackage("p2", "", "u.txt")));
  const auto p2 = Must(store().ListProject("p2"));
  EXPECT_TRUE(p2.groups.empty());
  EXPECT_TRUE(p2.ungrouped.empty());
  EXPECT_EQ(store().DeletePackage("p2", "g1", "a.py").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store().SetGroupOwner("p2", "g1", "owner2", 2000).error().code, ErrorCode::kNotFound);

  // The same names in p2 are p2's own.
  Must(store().ReplaceGroup(Group("p2", "g1", 3000), {Package("p2", "g1", "b.py", 3000)}));
  Must(store().PutUngrouped({Package("p2", "", "u.txt", 3000)}));
  EXPECT_EQ(Names(StoredGroup("p1", "g1").packages), std::vector<std::string>{"a.py"});
  EXPECT_EQ(StoredGroup("p1", "g1").create_time, 1000);
  EXPECT_EQ(Stored("p1", "", "u.txt").create_time, 1000);
  EXPECT_EQ(Must(store().ListProject("p1")).groups.size(), 1u);
}

TEST_P(MetadataStoreContract, ListProjectOrdersGroupsAndUngroupedByNameAndPackagesByUpload) {
  Must(store().ReplaceGroup(Group("p1", "zeta"),
                            {Package("p1", "zeta", "z.py"), Package("p1", "zeta", "a.py")}));
  Must(store().ReplaceGroup(Group("p1", "alpha"),
                            {Package("p1", "alpha", "m.py"), Package("p1", "alpha", "b.py"),
                             Package("p1", "alpha", "k.py")}));
  Must(store().ReplaceGroup(Group("p1", "empty"), {}));
  Must(store().MergeIntoGroup(Group("p1", "zeta", 2000), {Package("p1", "zeta", "0.py")}));
  Must(store().PutUngrouped({Package("p1", "", "zz.txt"), Package("p1", "", "aa.txt")}));
  Must(store().PutUngrouped({Package("p1", "", "mm.txt")}));

  const auto contents = Must(store().ListProject("p1"));
  EXPECT_EQ(GroupNames(contents), (std::vector<std::string>{"alpha", "empty", "zeta"}));
  ASSERT_EQ(contents.groups.size(), 3u);
  EXPECT_EQ(Names(contents.groups[0].packages), (std::vector<std::string>{"m.py", "b.py", "k.py"}));
  EXPECT_TRUE(contents.groups[1].packages.empty());
  EXPECT_EQ(Names(contents.groups[2].packages), (std::vector<std::string>{"z.py", "a.py", "0.py"}));
  EXPECT_EQ(Names(contents.ungrouped), (std::vector<std::string>{"aa.txt", "mm.txt", "zz.txt"}));
  EXPECT_EQ(Describe(contents.groups[0]), Describe(StoredGroup("p1", "alpha")));
}

// ---- Listing in the store: pages, filters, cursor, batches ----

// (group, name) of each package, "" for ungrouped ones: the listing order in one comparison.
std::vector<std::string> Keys(const std::vector<PackageRecord>& packages) {
  std::vector<std::string> keys;
  for (const auto& p : packages) keys.push_back(p.group + "/" + p.name);
  return keys;
}

class ListingContract : public MetadataStoreContract {
 protected:
  // Ungrouped u1, u2; group "b" (b2, b1 uploaded in that order, b1 a jar tagged team=x),
  // empty group "c", group "a" (a1 tagged team=y); another project's package in between.
  void Fill() {
    Must(store().PutUngrouped({Package("p1", "", "u2"), Package("p1", "", "u1")}));
    auto b1 = Package("p1", "b", "b1");
    b1.kind = PackageKind::kJar;
    b1.tags = {{"team", "x"}, {"env", "prod"}};
    Must(store().ReplaceGroup(Group("p1", "b"), {Package("p1", "b", "b2"), b1}));
    Must(store().ReplaceGroup(Group("p1", "c"), {}));
    auto a1 = Package("p1", "a", "a1");
    a1.tags = {{"team", "y"}};
    Must(store().ReplaceGroup(Group("p1", "a"), {a1}));
    Must(store().ReplaceGroup(Group("p0", "a"), {Package("p0", "a", "zz")}));
  }
  PackagePage Page(std::size_t limit, std::size_t offset = 0, PackageFilter filter = {},
                   std::optional<ListPosition> after = std::nullopt) {
    return Must(store().ListPage(PageRequest{.project = "p1",
                                             .filter = std::move(filter),
                                             .limit = limit,
                                             .offset = offset,
                                             .after = std::move(after)}));
  }
};

TEST_P(ListingContract, PagesFollowGroupThenNameOrderUngroupedFirstWithTheTotal) {
  Fill();
  const auto all = Page(100);
  EXPECT_EQ(Keys(all.packages), (std::vector<std::string>{"/u1", "/u2", "a/a1", "b/b1", "b/b2"}));
  EXPECT_EQ(all.total, 5u);
  ASSERT_EQ(all.groups.size(), 2u);  // the groups of the page, not the empty one
  EXPECT_EQ(all.groups[0].name, "a");
  EXPECT_EQ(all.groups[1].name, "b");
  EXPECT_EQ(all.groups[1].owner, "owner1");
  EXPECT_EQ(all.groups[1].description, "first");
  EXPECT_EQ(all.groups[1].create_time, 1000);
  EXPECT_TRUE(all.groups[1].packages.empty());
  // Each package whole, tags in their order.
  EXPECT_EQ(Describe(all.packages[3]), Describe(Stored("p1", "b", "b1")));
  EXPECT_EQ(all.packages[3].tags.size(), 2u);

  const auto middle = Page(2, 2);
  EXPECT_EQ(Keys(middle.packages), (std::vector<std::string>{"a/a1", "b/b1"}));
  EXPECT_EQ(middle.total, 5u);
  EXPECT_EQ(middle.groups.size(), 2u);
  EXPECT_TRUE(Page(2, 5).packages.empty());
  EXPECT_EQ(Page(2, 5).total, 5u);
  EXPECT_TRUE(Page(0).packages.empty());
}

TEST_P(ListingContract, TotalsFollowEveryWrite) {
  Fill();
  EXPECT_EQ(Page(1).total, 5u);
  EXPECT_EQ(Page(1).total, 5u);  // a store may remember it while nothing is written
  Must(store().DeletePackage("p1", "b", "b2"));
  EXPECT_EQ(Page(1).total, 4u);
  Must(store().PutUngrouped({Package("p1", "", "u3")}));
  EXPECT_EQ(Page(1).total, 5u);
  EXPECT_EQ(Page(1, 0, PackageFilter{.kind = PackageKind::kJar}).total, 1u);
  Must(store().ReplaceGroup(Group("p1", "b"), {}));
  EXPECT_EQ(Page(1, 0, PackageFilter{.kind = PackageKind::kJar}).total, 0u);
  EXPECT_EQ(Page(1).total, 4u);  // u1, u2, u3, a/a1
}

TEST_P(ListingContract, TheCursorContinuesAfterAPositionAndTheOffsetCountsFromIt) {
  Fill();
  EXPECT_EQ(Keys(Page(2, 0, {}, ListPosition{"", "u2"}).packages),
            (std::vector<std::string>{"a/a1", "b/b1"}));
  EXPECT_EQ(Keys(Page(2, 1, {}, ListPosition{"a", "a1"}).packages),
            (std::vector<std::string>{"b/b2"}));
  // A position that no longer exists still orders: "a/a0" comes before "a/a1".
  EXPECT_EQ(Keys(Page(1, 0, {}, ListPosition{"a", "a0"}).packages),
            (std::vector<std::string>{"a/a1"}));
  EXPECT_EQ(Page(1, 0, {}, ListPosition{"b", "b2"}).total, 5u);
  EXPECT_TRUE(Page(1, 0, {}, ListPosition{"b", "b2"}).packages.empty());
}

TEST_P(ListingContract, KindAndTagFiltersAreAppliedToPagesAndTotals) {
  Fill();
  const auto jars = Page(10, 0, PackageFilter{.kind = PackageKind::kJar});
  EXPECT_EQ(Keys(jars.packages), (std::vector<std::string>{"b/b1"}));
  EXPECT_EQ(jars.total, 1u);
  const auto team = Page(10, 0, PackageFilter{.tags = {{"team", std::nullopt}}});
  EXPECT_EQ(Keys(team.packages), (std::vector<std::string>{"a/a1", "b/b1"}));
  const auto both = Page(10, 0, PackageFilter{.tags = {{"team", "x"}, {"env", "prod"}}});
  EXPECT_EQ(Keys(both.packages), (std::vector<std::string>{"b/b1"}));
  EXPECT_EQ(Page(10, 0, PackageFilter{.tags = {{"team", "x"}, {"env", "dev"}}}).total, 0u);
  EXPECT_EQ(Page(10, 0, PackageFilter{.kind = PackageKind::kJar, .tags = {{"team", "y"}}}).total,
            0u);
}

TEST_P(ListingContract, TheNameFilterMatchesAPackageOrGroupNameByteForByte) {
  Fill();
  Must(store().ReplaceGroup(Group("p1", "Team_x"), {Package("p1", "Team_x", "q.py")}));
  // "1" is in u1, a1 and b1; "_" and "%" are plain bytes, not patterns.
  EXPECT_EQ(Keys(Page(10, 0, {.name_contains = "1"}).packages),
            (std::vector<std::string>{"/u1", "a/a1", "b/b1"}));
  EXPECT_EQ(Page(10, 0, {.name_contains = "1"}).total, 3u);
  EXPECT_EQ(Keys(Page(10, 0, {.name_contains = "m_"}).packages),
            std::vector<std::string>{"Team_x/q.py"});           // by the group's name
  EXPECT_EQ(Page(10, 0, {.name_contains = "team"}).total, 0u);  // case counts
  EXPECT_EQ(Page(10, 0, {.name_contains = "%"}).total, 0u);
  EXPECT_EQ(Keys(Page(1, 1, {.kind = PackageKind::kPyFile, .name_contains = "1"}).packages),
            std::vector<std::string>{"a/a1"});
  const auto walked = Must(store().ListGroups("p1", {.name_contains = "b"}, "", 10));
  ASSERT_EQ(walked.groups.size(), 1u);
  EXPECT_EQ(Names(walked.groups[0].packages), (std::vector<std::string>{"b2", "b1"}));
}

// Needles of three characters or more may be served by a name index: its answers must be
// the same bytes-exact ones, and follow every write (replace, merge, delete, other projects).
TEST_P(ListingContract, LongNameFiltersAreExactAndFollowEveryWrite) {
  const auto found = [&](const std::string& needle, const std::string& project = "p1") {
    PageRequest request{.project = project, .filter = {.name_contains = needle}, .limit = 50};
    auto page = Must(store().ListPage(request));
    EXPECT_EQ(page.total, page.packages.size()) << needle;
    return Keys(page.packages);
  };
  std::vector<PackageRecord> many;
  for (int i = 0; i < 300; ++i) many.push_back(Package("p1", "", "pkg" + std::to_string(i)));
  many.push_back(Package("p1", "", "deep-Needle_%\"q\".py"));
  Must(store().PutUngrouped(many));
  Must(store().ReplaceGroup(Group("p1", "grp-needle"), {Package("p1", "grp-needle", "a.py")}));
  Must(store().ReplaceGroup(Group("p2", "other"), {Package("p2", "other", "Needle.py")}));

  EXPECT_EQ(found("Needle"), std::vector<std::string>{"/deep-Needle_%\"q\".py"});
  EXPECT_EQ(found("needle"), std::vector<std::string>{"grp-needle/a.py"});  // the group's name
  EXPECT_EQ(found("dle_%\"q\""), std::vector<std::string>{"/deep-Needle_%\"q\".py"});
  EXPECT_TRUE(found("dle%").empty());    // % and _ are bytes, not patterns
  EXPECT_TRUE(found("NEEDLE").empty());  // case counts
  EXPECT_EQ(found("Needle", "p2"), std::vector<std::string>{"other/Needle.py"});
  EXPECT_EQ(found("pkg29").size(), 11u);  // pkg29, pkg290..pkg299

  Must(store().ReplaceGroup(Group("p1", "grp-needle"), {Package("p1", "grp-needle", "b.py")}));
  EXPECT_EQ(found("needle"), std::vector<std::string>{"grp-needle/b.py"});
  Must(store().MergeIntoGroup(Group("p1", "grp-needle"), {Package("p1", "grp-needle", "c.py")}));
  EXPECT_EQ(found("needle"), (std::vector<std::string>{"grp-needle/b.py", "grp-needle/c.py"}));
  Must(store().DeletePackage("p1", "", "deep-Needle_%\"q\".py"));
  EXPECT_TRUE(found("Needle").empty());
  Must(store().PutUngrouped({Package("p1", "", "Needle-again")}));
  EXPECT_EQ(found("Needle"), std::vector<std::string>{"/Needle-again"});
  // Multi-byte characters: two characters (a scan) and three (the index) both match exactly.
  Must(store().PutUngrouped({Package("p1", "", "caf\u00e9-\u00e9t\u00e9.py")}));
  EXPECT_EQ(found("\u00e9t").size(), 1u);
  EXPECT_EQ(found("\u00e9t\u00e9").size(), 1u);
  EXPECT_TRUE(found("\u00e9T\u00e9").empty());
}

// Pages far into a large listing: a store may start them from a remembered position, which
// must give exactly the entries an offset counts to, and follow every write.
TEST_P(ListingContract, DeepOffsetsOfALargeListingAreExactAndFollowWrites) {
  constexpr int kPackages = 700;
  const auto name = [](int i) {
    std::string n = std::to_string(i);
    return "x" + std::string(4 - n.size(), '0') + n + ".py";
  };
  std::vector<PackageRecord> packages;
  for (int i = 0; i < kPackages; ++i) packages.push_back(Package("p1", "", name(i)));
  Must(store().PutUngrouped(packages));  // one transaction
  for (const std::size_t offset : {0, 1, 255, 256, 257, 511, 512, 513, 698, 699, 700, 5000}) {
    const auto page = Page(2, offset);
    std::vector<std::string> expected;
    for (std::size_t i = offset; i < std::min<std::size_t>(offset + 2, kPackages); ++i)
      expected.push_back("/" + name(static_cast<int>(i)));
    EXPECT_EQ(Keys(page.packages), expected) << "offset " << offset;
    EXPECT_EQ(page.total, static_cast<std::size_t>(kPackages));
  }
  Must(store().DeletePackage("p1", "", name(100)));  // every later entry moves up one
  EXPECT_EQ(Keys(Page(1, 300).packages), std::vector<std::string>{"/" + name(301)});
  EXPECT_EQ(Page(1, 300).total, static_cast<std::size_t>(kPackages - 1));
  Must(store().PutUngrouped({Package("p1", "", "first.py")}));  // and down one again
  EXPECT_EQ(Keys(Page(1, 300).packages), std::vector<std::string>{"/" + name(300)});
  EXPECT_EQ(Keys(Page(1, 0, {.name_contains = "x06"}).packages),
            std::vector<std::string>{"/" + name(600)});
  EXPECT_EQ(Keys(Page(1, 100, {.name_contains = "x0"}).packages),
            std::vector<std::string>{"/" + name(101)});  // x0100 was deleted
  // A cursor with an offset counts from the cursor.
  EXPECT_EQ(Keys(Page(1, 300, {}, ListPosition{"", name(9)}).packages),
            std::vector<std::string>{"/" + name(311)});
}

// Several instances share one database (PostgreSQL; SQLite files may be opened by several
// processes): marks one instance remembers must follow the writes another makes. Every page at
// a deep offset equals the same slice of a full listing read by a fresh store, for each filter,
// after each kind of change to the listing: packages added and removed before the offset, a
// kind changed, tags changed, a group replaced.
TEST_P(ListingContract, DeepPagesFollowTheWritesOfAnotherInstance) {
  const std::shared_ptr<MetadataStore> other = Must(backend_->Connect()).metadata;
  const auto name = [](int i) {
    std::string n = std::to_string(i);
    return "x" + std::string(4 - n.size(), '0') + n + ".py";
  };
  // 12 groups of 100 packages: every third a jar, every fifth tagged team=x.
  const auto member = [&](const std::string& group, int i) {
    auto p = Package("p1", group, name(i));
    if (i % 3 == 0) p.kind = PackageKind::kJar;
    if (i % 5 == 0) p.tags = {{"team", "x"}};
    return p;
  };
  const auto group_of = [](int i) { return "g" + std::to_string(10 + i / 100); };
  const auto fill_group = [&](int first) {
    std::vector<PackageRecord> packages;
    for (int i = first; i < first + 100; ++i) packages.push_back(member(group_of(first), i));
    Must(other->ReplaceGroup(Group("p1", group_of(first)), packages));
  };
  for (int first = 0; first < 1200; first += 100) fill_group(first);
  const std::vector<PackageFilter> filters = {
      {},
      {.kind = PackageKind::kJar},
      {.tags = {{"team", "x"}}},
      {.name_contains = "7"},
  };
  const auto check = [&](const std::string& after) {
    const std::shared_ptr<MetadataStore> fresh = Must(backend_->Connect()).metadata;
    for (const auto& filter : filters) {
      const auto full = Must(fresh->ListPage({.project = "p1", .filter = filter, .limit = 5000}));
      const auto all = Keys(full.packages);
      ASSERT_EQ(full.total, all.size());
      for (const std::size_t offset : {0, 255, 256, 300, 511, 512, 700, 1000, 1150, 1195}) {
        const auto page = Page(7, offset, filter);
        const std::vector<std::string> expected(
            all.begin() + static_cast<std::ptrdiff_t>(std::min(offset, all.size())),
            all.begin() + static_cast<std::ptrdiff_t>(std::min(offset + 7, all.size())));
        EXPECT_EQ(Keys(page.packages), expected)
            << after << ", offset " << offset << ", filter kind=" << filter.kind.has_value()
            << " tags=" << filter.tags.size() << " name=" << filter.name_contains;
        EXPECT_EQ(page.total, all.size()) << after << ", offset " << offset;
      }
    }
  };
  check("filled by the other instance");
  Must(other->DeletePackage("p1", group_of(5), name(5)));
  check("a package deleted before the offsets");
  Must(other->PutUngrouped({Package("p1", "", "early.py")}));
  check("an ungrouped package added before every group");
  auto changed = member(group_of(6), 6);
  changed.kind = PackageKind::kFile;
  Must(other->MergeIntoGroup(Group("p1", group_of(6)), {changed}));
  check("a jar made a file");
  auto tagged = member(group_of(8), 8);
  tagged.tags = {{"team", "x"}};
  Must(other->MergeIntoGroup(Group("p1", group_of(8)), {tagged}));
  check("a package tagged");
  Must(other->ReplaceGroup(Group("p1", group_of(300)), {member(group_of(300), 300)}));
  check("a group of 100 replaced by one package");
  Must(other->ReplaceGroup(Group("p2", "elsewhere"), {Package("p2", "elsewhere", "z.py")}));
  check("another project written");
}

TEST_P(ListingContract, BatchesWalkUngroupedByNameThenGroupsByNameInUploadOrder) {
  Fill();
  EXPECT_EQ(Names(Must(store().ListUngrouped("p1", {}, "", 10))),
            (std::vector<std::string>{"u1", "u2"}));
  EXPECT_EQ(Names(Must(store().ListUngrouped("p1", {}, "u1", 10))), std::vector<std::string>{"u2"});
  EXPECT_EQ(Names(Must(store().ListUngrouped("p1", {}, "", 1))), std::vector<std::string>{"u1"});

  const auto first = Must(store().ListGroups("p1", {}, "", 2));
  ASSERT_EQ(first.groups.size(), 2u);
  EXPECT_EQ(first.groups[0].name, "a");
  EXPECT_EQ(Names(first.groups[1].packages), (std::vector<std::string>{"b2", "b1"}));
  EXPECT_EQ(Describe(first.groups[1]), Describe(StoredGroup("p1", "b")));
  ASSERT_TRUE(first.next_after);
  const auto rest = Must(store().ListGroups("p1", {}, *first.next_after, 2));
  ASSERT_EQ(rest.groups.size(), 1u);  // the empty group, shown when nothing is filtered
  EXPECT_EQ(rest.groups[0].name, "c");
  EXPECT_FALSE(rest.next_after);

  // Filtered: groups without a match are left out, the walk goes on past them.
  const auto jars = Must(store().ListGroups("p1", {.kind = PackageKind::kJar}, "", 1));
  EXPECT_TRUE(jars.groups.empty());
  ASSERT_TRUE(jars.next_after);
  const auto next = Must(store().ListGroups("p1", {.kind = PackageKind::kJar}, "a", 5));
  ASSERT_EQ(next.groups.size(), 1u);
  EXPECT_EQ(Names(next.groups[0].packages), std::vector<std::string>{"b1"});
  EXPECT_TRUE(Must(store().ListUngrouped("p1", {.kind = PackageKind::kJar}, "", 10)).empty());
}

// The unpaginated listing is written from these batches: every batch size must give each group
// whole (its packages in upload order, each with every column and its tags in order), and a
// filter only the matching packages, groups without one left out.
TEST_P(ListingContract, BatchesOfAnySizeGiveTheGroupsWholeAndFilteredExactly) {
  Fill();
  std::vector<PackageRecord> d;
  for (const std::string name : {"d3", "d1", "d2"}) {
    d.push_back(Package("p1", "d", name));
    d.back().tags = {{"z", name}, {"team", name == "d1" ? "x" : "q"}, {"a", ""}};
  }
  d[2].kind = PackageKind::kJar;
  Must(store().ReplaceGroup(Group("p1", "d"), d));
  // ListGroups in turn, and (the same batches, checked one by one) WalkGroups.
  const auto walk = [&](const PackageFilter& filter, std::size_t batch) {
    std::vector<std::string> described;
    std::string after;
    const auto walked = store().WalkGroups("p1", filter, batch);
    for (int calls = 0; calls < 20; ++calls) {
      const auto read = Must(store().ListGroups("p1", filter, after, batch));
      const auto next = Must(walked->Next());
      EXPECT_LE(read.groups.size(), batch);
      for (const auto& g : read.groups) described.push_back(Describe(g));
      EXPECT_EQ(GroupNames(next.groups), GroupNames(read.groups)) << batch;
      for (std::size_t i = 0; i < std::min(next.groups.size(), read.groups.size()); ++i)
        EXPECT_EQ(Describe(next.groups[i]), Describe(read.groups[i])) << batch;
      EXPECT_EQ(next.next_after, read.next_after) << batch;
      if (!read.next_after) break;
      after = *read.next_after;
    }
    return described;
  };
  const auto stored = [&](const std::string& group, std::vector<std::string> names) {
    GroupRecord g = StoredGroup("p1", group);
    std::erase_if(g.packages, [&](const PackageRecord& p) {
      return std::find(names.begin(), names.end(), p.name) == names.end();
    });
    return Describe(g);
  };
  for (const std::size_t batch : {1, 2, 3, 10}) {
    EXPECT_EQ(walk({}, batch),
              (std::vector<std::string>{
                  Describe(StoredGroup("p1", "a")), Describe(StoredGroup("p1", "b")),
                  Describe(StoredGroup("p1", "c")), Describe(StoredGroup("p1", "d"))}))
        << batch;
    EXPECT_EQ(walk({.kind = PackageKind::kJar}, batch),
              (std::vector<std::string>{stored("b", {"b1"}), stored("d", {"d2"})}))
        << batch;
    EXPECT_EQ(walk({.tags = {{"team", "x"}}}, batch),
              (std::vector<std::string>{stored("b", {"b1"}), stored("d", {"d1"})}))
        << batch;
    EXPECT_EQ(walk({.tags = {{"a", std::nullopt}}, .name_contains = "d"}, batch),
              (std::vector<std::string>{Describe(StoredGroup("p1", "d"))}))
        << batch;
  }
  EXPECT_EQ(Names(StoredGroup("p1", "d").packages), (std::vector<std::string>{"d3", "d1", "d2"}));
}

// A walk may hold a connection (PostgreSQL sends each batch's statement ahead): walks left
// half done, more at once than the store has connections, and one meeting an uploading
// package (read again with its progress) must neither block other calls nor leave a
// connection unusable.
TEST_P(ListingContract, WalksLeftUnfinishedOrMoreThanTheConnectionsLeaveTheStoreUsable) {
  Fill();
  auto uploading = Package("p1", "e", "e1");
  uploading.sha256 = "";
  uploading.status = PackageStatus::kUploading;
  Must(store().ReplaceGroup(Group("p1", "e"), {uploading}));
  std::vector<std::unique_ptr<GroupWalk>> walks;
  for (int i = 0; i < 20; ++i) {
    walks.push_back(store().WalkGroups("p1", {}, 1));
    EXPECT_EQ(GroupNames(Must(walks.back()->Next()).groups), std::vector<std::string>{"a"});
    EXPECT_EQ(Names(StoredGroup("p1", "b").packages), (std::vector<std::string>{"b2", "b1"}));
  }
  for (auto& walk : walks) {  // each walk goes on where it stopped
    EXPECT_EQ(GroupNames(Must(walk->Next()).groups), std::vector<std::string>{"b"});
    walk.reset();  // left unfinished, a statement perhaps in flight
  }
  for (const std::size_t batch : {1, 2, 10}) {
    const auto walk = store().WalkGroups("p1", {}, batch);
    std::vector<std::string> groups;
    for (int calls = 0; calls < 10; ++calls) {
      auto next = Must(walk->Next());
      for (const auto& g : next.groups) {
        groups.push_back(g.name);
        if (g.name == "e") EXPECT_EQ(Describe(g), Describe(StoredGroup("p1", "e"))) << batch;
      }
      if (!next.next_after) break;
    }
    EXPECT_EQ(groups, (std::vector<std::string>{"a", "b", "c", "e"})) << batch;
  }
  EXPECT_EQ(Names(Must(store().ListUngrouped("p1", {}, "", 10))),
            (std::vector<std::string>{"u1", "u2"}));
}

INSTANTIATE_TEST_SUITE_P(Backends, ListingContract, ::testing::ValuesIn(test::StoreBackends()),
                         [](const auto& info) { return info.param.name; });

TEST_P(MetadataStoreContract, AbsentThingsReadAsEmptyNotAsErrors) {
  EXPECT_FALSE(Must(store().GetGroup("p1", "nope")));
  EXPECT_FALSE(Must(store().GetPackage("p1", "nope", "a.py")));
  EXPECT_FALSE(Must(store().GetPackage("p1", "", "a.py")));
  const auto contents = Must(store().ListProject("p1"));
  EXPECT_TRUE(contents.groups.empty());
  EXPECT_TRUE(contents.ungrouped.empty());
}

// ---- Delete and owners ----

TEST_P(MetadataStoreContract, DeleteReturnsTheRecordThenReportsNotFound) {
  auto a = Package("p1", "g1", "a.py");
  a.tags = {{"env", "prod"}};
  Must(store().ReplaceGroup(Group("p1", "g1"), {a, Package("p1", "g1", "b.py")}));

  EXPECT_EQ(Describe(Must(store().DeletePackage("p1", "g1", "a.py"))), Describe(a));
  EXPECT_FALSE(Must(store().GetPackage("p1", "g1", "a.py")));
  EXPECT_EQ(Names(StoredGroup("p1", "g1").packages), std::vector<std::string>{"b.py"});
  const auto again = store().DeletePackage("p1", "g1", "a.py");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kNotFound);

  const auto u = Package("p1", "", "u.txt");
  Must(store().PutUngrouped({u}));
  EXPECT_EQ(Describe(Must(store().DeletePackage("p1", "", "u.txt"))), Describe(u));
  EXPECT_FALSE(Must(store().GetPackage("p1", "", "u.txt")));
}

TEST_P(MetadataStoreContract, DeletingTheLastPackageLeavesAnEmptyGroup) {
  Must(store().ReplaceGroup(Group("p1", "g1"), {Package("p1", "g1", "a.py")}));
  Must(store().DeletePackage("p1", "g1", "a.py"));
  const auto group = StoredGroup("p1", "g1");
  EXPECT_TRUE(group.packages.empty());
  EXPECT_EQ(GroupNames(Must(store().ListProject("p1"))), std::vector<std::string>{"g1"});
}

TEST_P(MetadataStoreContract, SetGroupOwnerChangesTheGroupAndAllItsPackages) {
  Must(store().ReplaceGroup(Group("p1", "g1"),
                            {Package("p1", "g1", "a.py"), Package("p1", "g1", "b.py")}));
  Must(store().ReplaceGroup(Group("p1", "other"), {Package("p1", "other", "c.py")}));
  Must(store().PutUngrouped({Package("p1", "", "a.py")}));

  Must(store().SetGroupOwner("p1", "g1", "newowner", 7000));

  const auto group = StoredGroup("p1", "g1");
  EXPECT_EQ(group.owner, "newowner");
  EXPECT_EQ(group.update_time, 7000);
  EXPECT_EQ(group.create_time, 1000);
  for (const auto& p : group.packages) {
    EXPECT_EQ(p.owner, "newowner") << p.name;
    EXPECT_EQ(p.update_time, 7000) << p.name;
    EXPECT_EQ(p.create_time, 1000) << p.name;
  }
  EXPECT_EQ(StoredGroup("p1", "other").owner, "owner1");
  EXPECT_EQ(Stored("p1", "other", "c.py").owner, "owner1");
  EXPECT_EQ(Stored("p1", "", "a.py").owner, "owner1");
}

TEST_P(MetadataStoreContract, SetPackageOwnerChangesOnlyThatPackage) {
  Must(store().ReplaceGroup(Group("p1", "g1"),
                            {Package("p1", "g1", "a.py"), Package("p1", "g1", "b.py")}));
  Must(store().PutUngrouped({Package("p1", "", "a.py")}));

  Must(store().SetPackageOwner("p1", "g1", "a.py", "grouped_owner", 7000));
  Must(store().SetPackageOwner("p1", "", "a.py", "loose_owner", 8000));

  const auto grouped = Stored("p1", "g1", "a.py");
  EXPECT_EQ(grouped.owner, "grouped_owner");
  EXPECT_EQ(grouped.update_time, 7000);
  EXPECT_EQ(grouped.create_time, 1000);
  const auto loose = Stored("p1", "", "a.py");
  EXPECT_EQ(loose.owner, "loose_owner");
  EXPECT_EQ(loose.update_time, 8000);
  EXPECT_EQ(Stored("p1", "g1", "b.py").owner, "owner1");
  EXPECT_EQ(StoredGroup("p1", "g1").owner, "owner1");
}

// A show repeated while nothing changes may be answered without reading the database again
// (SqlMetadataStore keeps shown packages on SQLite), but never once a write has committed:
// whether this store object made it or another one on the same database (another instance).
TEST_P(MetadataStoreContract, ShowsFollowEveryWriteOfThisOrAnotherInstance) {
  const std::shared_ptr<MetadataStore> other = Must(backend_->Connect()).metadata;
  Must(store().ReplaceGroup(Group("p1", "g1"), {Package("p1", "g1", "a.py")}));
  Must(store().PutUngrouped({Package("p1", "", "a.py")}));
  const auto shown_twice = [&](const std::string& group) {
    (void)Stored("p1", group, "a.py");  // shown once before the write, so it may be kept
    return Stored("p1", group, "a.py");
  };
  EXPECT_EQ(shown_twice("g1").owner, "owner1");

  Must(other->SetPackageOwner("p1", "g1", "a.py", "by_other", 2000));
  EXPECT_EQ(shown_twice("g1").owner, "by_other");
  Must(store().SetPackageOwner("p1", "g1", "a.py", "by_this", 3000));
  EXPECT_EQ(shown_twice("g1").owner, "by_this");

  auto changed = Package("p1", "g1", "a.py", 4000);
  changed.sha256 = "new-sha";
  changed.tags = {{"team", "x"}};
  Must(other->MergeIntoGroup(Group("p1", "g1"), {changed}));
  auto shown = shown_twice("g1");
  EXPECT_EQ(shown.sha256, "new-sha");
  ASSERT_EQ(shown.tags.size(), 1u);
  EXPECT_EQ(shown.tags[0].value, "x");

  Must(other->SetGroupOwner("p1", "g1", "group_owner", 5000));
  EXPECT_EQ(shown_twice("g1").owner, "group_owner");
  Must(other->MarkCorrupt("p1", "g1", "a.py", "new-sha", "bytes differ", 6000));
  EXPECT_EQ(shown_twice("g1").status, PackageStatus::kFailed);

  Must(other->DeletePackage("p1", "g1", "a.py"));
  EXPECT_FALSE(Must(store().GetPackage("p1", "g1", "a.py")).has_value());
  Must(other->ReplaceGroup(Group("p1", "g1"), {Package("p1", "g1", "a.py", 7000)}));
  EXPECT_EQ(shown_twice("g1").create_time, 7000);

  // The ungrouped package of the same name is its own entry.
  EXPECT_EQ(shown_twice("").owner, "owner1");
  auto loose = Package("p1", "", "a.py", 8000);
  loose.owner = "loose_owner";
  Must(other->PutUngrouped({loose}));
  EXPECT_EQ(shown_twice("").owner, "loose_owner");
  EXPECT_EQ(shown_twice("g1").owner, "owner1");
}

TEST_P(MetadataStoreContract, MissingTargetsAreNotFound) {
  Must(store().ReplaceGroup(Group("p1", "g1"), {Package("p1", "g1", "a.py")}));
  Must(store().PutUngrouped({Package("p1", "", "u.txt")}));

  EXPECT_EQ(store().DeletePackage("p1", "g1", "zz.py").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store().DeletePackage("p1", "nogroup", "a.py").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store().DeletePackage("p1", "", "a.py").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store().DeletePackage("p1", "g1", "u.txt").error().code, ErrorCode::kNotFound);
  ExpectNotFound(store().SetGroupOwner("p1", "nogroup", "owner2", 2000), "nogroup");
  ExpectNotFound(store().SetGroupOwner("p1", "", "owner2", 2000), "");
  ExpectNotFound(store().SetPackageOwner("p1", "g1", "zz.py", "owner2", 2000), "zz.py");
  ExpectNotFound(store().SetPackageOwner("p1", "", "a.py", "owner2", 2000), "a.py");
  ExpectNotFound(store().SetPackageOwner("p1", "nogroup", "a.py", "owner2", 2000), "a.py");

  const auto missing = store().DeletePackage("p1", "", "gone.txt");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("gone.txt"), std::string::npos);
  EXPECT_EQ(Stored("p1", "g1", "a.py").owner, "owner1");  // nothing changed on the way
}

// ---- Fields and tags ----

TEST_P(MetadataStoreContract, EveryFieldRoundTrips) {
  std::vector<PackageRecord> packages;
  const PackageKind kinds[] = {PackageKind::kJar, PackageKind::kPyFile, PackageKind::kFile,
                               PackageKind::kModelFile};
  const PackageStatus statuses[] = {PackageStatus::kUploading, PackageStatus::kReady,
                                    PackageStatus::kFailed};
  for (int k = 0; k < 4; ++k) {
    for (int s = 0; s < 3; ++s) {
      auto p = Package("p1", "g1", "pkg-" + std::to_string(k) + "-" + std::to_string(s));
      p.kind = kinds[k];
      p.status = statuses[s];
      p.is_async = s == 0;
      p.status_reason = s == 2 ? "source returned 404 for obs://b/ü.py" : "";
      p.sha256 = s == 0 ? "" : std::string(64, static_cast<char>('a' + k));
      p.size = 5'000'000'000LL + k;  // beyond 32 bits
      p.underlying_name = "2024/" + std::to_string(k) + "/blob ü";
      p.create_time = 1'700'000'000'123LL;
      p.update_time = 1'700'000'000'456LL + s;
      packages.push_back(p);
    }
  }
  Must(store().ReplaceGroup(Group("p1", "g1"), packages));
  Must(store().PutUngrouped({packages[0], packages[11]}));

  const auto group = StoredGroup("p1", "g1");
  ASSERT_EQ(group.packages.size(), packages.size());
  for (std::size_t i = 0; i < packages.size(); ++i) {
    EXPECT_EQ(Describe(group.packages[i]), Describe(packages[i]));
  }
  auto loose = packages[11];
  loose.group = "";
  EXPECT_EQ(Describe(Stored("p1", "", loose.name)), Describe(loose));
}

TEST_P(MetadataStoreContract, TagsRoundTripInOrderAndAreReplacedWithThePackage) {
  auto a = Package("p1", "g1", "a.py");
  a.tags = {{"env", "prod"}, {"環境", "本番 値"}, {"empty", ""}, {"a", "z"}};
  auto u = Package("p1", "", "u.txt");
  u.tags = {{"ключ", "значение"}};
  Must(store().ReplaceGroup(Group("p1", "g1"), {a, Package("p1", "g1", "b.py")}));
  Must(store().PutUngrouped({u}));

  EXPECT_EQ(Stored("p1", "g1", "a.py").tags, a.tags);
  EXPECT_TRUE(Stored("p1", "g1", "b.py").tags.empty());
  EXPECT_EQ(Stored("p1", "", "u.txt").tags, u.tags);
  const auto contents = Must(store().ListProject("p1"));
  EXPECT_EQ(contents.groups.at(0).packages.at(0).tags, a.tags);
  EXPECT_EQ(contents.ungrouped.at(0).tags, u.tags);

  auto a2 = Package("p1", "g1", "a.py", 2000);
  a2.tags = {{"k", "v"}};
  Must(store().ReplaceGroup(Group("p1", "g1", 2000), {a2}));
  EXPECT_EQ(Stored("p1", "g1", "a.py").tags, a2.tags);

  auto a3 = Package("p1", "g1", "a.py", 3000);
  Must(store().MergeIntoGroup(Group("p1", "g1", 3000), {a3}));
  EXPECT_TRUE(Stored("p1", "g1", "a.py").tags.empty());

  auto u2 = Package("p1", "", "u.txt", 2000);
  u2.tags = {{"x", "y"}};
  Must(store().PutUngrouped({u2}));
  EXPECT_EQ(Stored("p1", "", "u.txt").tags, u2.tags);
}

TEST_P(MetadataStoreContract, TagsGoAwayWithTheirPackage) {
  auto u = Package("p1", "", "u.txt");
  u.tags = {{"env", "prod"}};
  Must(store().PutUngrouped({u}));
  Must(store().DeletePackage("p1", "", "u.txt"));
  Must(store().PutUngrouped({Package("p1", "", "u.txt", 2000)}));
  EXPECT_TRUE(Stored("p1", "", "u.txt").tags.empty());
}

// ---- Blob references ----

TEST_P(MetadataStoreContract, BlobReferencesFollowInsertsAndDeletes) {
  auto Blobs = [&] {
    auto blobs = Must(store().ReferencedBlobs());
    std::sort(blobs.begin(), blobs.end());
    return blobs;
  };
  EXPECT_FALSE(Must(store().IsBlobReferenced("shaA")));
  EXPECT_TRUE(Blobs().empty());

  auto grouped_a = Package("p1", "g1", "a.py");
  grouped_a.sha256 = "shaA";
  auto grouped_b = Package("p1", "g1", "b.py");
  grouped_b.sha256 = "shaB";
  auto uploading = Package("p1", "g1", "c.py");
  uploading.sha256 = "";
  uploading.status = PackageStatus::kUploading;
  auto other_project_a = Package("p2", "", "copy.py");
  other_project_a.sha256 = "shaA";
  Must(store().ReplaceGroup(Group("p1", "g1"), {grouped_a, grouped_b, uploading}));
  Must(store().PutUngrouped({other_project_a}));

  EXPECT_TRUE(Must(store().IsBlobReferenced("shaA")));
  EXPECT_TRUE(Must(store().IsBlobReferenced("shaB")));
  EXPECT_FALSE(Must(store().IsBlobReferenced("")));
  EXPECT_FALSE(Must(store().IsBlobReferenced("shaC")));
  EXPECT_EQ(Blobs(), (std::vector<std::string>{"shaA", "shaB"}));

  Must(store().DeletePackage("p1", "g1", "a.py"));
  EXPECT_TRUE(Must(store().IsBlobReferenced("shaA")));  // still used by p2's copy
  Must(store().DeletePackage("p2", "", "copy.py"));
  EXPECT_FALSE(Must(store().IsBlobReferenced("shaA")));

  Must(store().ReplaceGroup(Group("p1", "g1", 2000), {}));  // drops b.py by replacement
  EXPECT_FALSE(Must(store().IsBlobReferenced("shaB")));
  EXPECT_TRUE(Blobs().empty());
}

TEST_P(MetadataStoreContract, ReplacingAPackagesBytesReleasesTheOldBlob) {
  auto old_x = Package("p1", "", "x.txt");
  old_x.sha256 = "shaOld";
  Must(store().PutUngrouped({old_x}));
  auto new_x = Package("p1", "", "x.txt", 2000);
  new_x.sha256 = "shaNew";
  Must(store().PutUngrouped({new_x}));
  EXPECT_FALSE(Must(store().IsBlobReferenced("shaOld")));
  EXPECT_EQ(Must(store().ReferencedBlobs()), std::vector<std::string>{"shaNew"});
}

// ---- Durability and atomicity ----

TEST_P(MetadataStoreContract, DataSurvivesReconnecting) {
  auto a = Package("p1", "g1", "a.py");
  a.tags = {{"env", "prod"}};
  Must(store().ReplaceGroup(Group("p1", "g1"), {a, Package("p1", "g1", "b.py")}));
  Must(store().PutUngrouped({Package("p1", "", "u.txt")}));
  const auto before = Must(store().ListProject("p1"));

  Reconnect();
  const auto after = Must(store().ListProject("p1"));
  ASSERT_EQ(after.groups.size(), 1u);
  EXPECT_EQ(Describe(after.groups[0]), Describe(before.groups[0]));
  ASSERT_EQ(after.ungrouped.size(), 1u);
  EXPECT_EQ(Describe(after.ungrouped[0]), Describe(before.ungrouped[0]));

  Reconnect();  // and again: reopening an existing store is not a one-off
  EXPECT_EQ(Describe(StoredGroup("p1", "g1")), Describe(before.groups[0]));
}

// Duplicate names in one replacement break the store's own uniqueness of (group, name): the
// call fails as a whole and the group is as it was.
TEST_P(MetadataStoreContract, FailedReplaceLeavesThePreviousGroupIntact) {
  Must(store().ReplaceGroup(Group("p1", "g1"),
                            {Package("p1", "g1", "a.py"), Package("p1", "g1", "b.py")}));
  const auto before = StoredGroup("p1", "g1");

  GroupRecord second = Group("p1", "g1", 2000);
  second.owner = "owner2";
  const auto failed = store().ReplaceGroup(
      second, {Package("p1", "g1", "c.py", 2000), Package("p1", "g1", "c.py", 2000)});
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, ErrorCode::kInternal);
  EXPECT_EQ(Describe(StoredGroup("p1", "g1")), Describe(before));
  EXPECT_FALSE(Must(store().GetPackage("p1", "g1", "c.py")));

  // The store is usable afterwards.
  Must(store().ReplaceGroup(second, {Package("p1", "g1", "c.py", 2000)}));
  EXPECT_EQ(Names(StoredGroup("p1", "g1").packages), std::vector<std::string>{"c.py"});
}

// A duplicate tag key fails after the package row itself was written: neither stays.
TEST_P(MetadataStoreContract, FailedMergeAndPutLeaveNothingHalfWritten) {
  Must(store().ReplaceGroup(Group("p1", "g1"), {Package("p1", "g1", "a.py")}));
  const auto before = StoredGroup("p1", "g1");

  auto bad = Package("p1", "g1", "b.py", 2000);
  bad.tags = {{"k", "1"}, {"k", "2"}};
  EXPECT_FALSE(
      store().MergeIntoGroup(Group("p1", "g1", 2000), {Package("p1", "g1", "a.py", 2000), bad}));
  EXPECT_EQ(Describe(StoredGroup("p1", "g1")), Describe(before));
  EXPECT_FALSE(store().MergeIntoGroup(Group("p1", "new", 2000), {bad}));
  EXPECT_FALSE(Must(store().GetGroup("p1", "new")));

  bad.group = "";
  EXPECT_FALSE(store().PutUngrouped({Package("p1", "", "ok.txt"), bad}));
  EXPECT_TRUE(Must(store().ListProject("p1")).ungrouped.empty());
}

// 8 writers replace one group with their own package sets while a reader watches through a
// second store (as another instance would): every state seen, and the final one, is exactly
// one writer's set.
// Shows arriving together may be read in one statement (PostgreSQL batches them): each must
// still get exactly its own package, with its own tags, or nothing.
TEST_P(MetadataStoreContract, ConcurrentShowsEachGetTheirOwnAnswer) {
  // Names a batch must keep apart: quotes, backslashes, commas and braces (an array literal's
  // syntax), spaces, "NULL", and canonical (NFC) non-ASCII text.
  const std::vector<std::string> names = {"a.py",          "b.py", "we\"ird\\,{x}.py",
                                          "with space.py", "NULL", "\xc3\xa9t\xc3\xa9.py"};
  struct Key {
    std::string project, group, name;
    bool stored;
  };
  std::vector<Key> keys;
  for (const std::string group : {"g1", "g2", "we\"g\\{,}", ""}) {
    std::vector<PackageRecord> packages;
    for (std::size_t i = 0; i < names.size(); ++i) {
      auto p = Package("p1", group, names[i], 1000 + static_cast<std::int64_t>(i));
      p.owner = "o-" + group + "-" + names[i];
      for (std::size_t t = 0; t < i % 3; ++t)
        p.tags.push_back({"k" + std::to_string(t), group + "/" + names[i]});
      packages.push_back(p);
      keys.push_back({"p1", group, names[i], true});
    }
    if (group.empty())
      Must(store().PutUngrouped(packages));
    else
      Must(store().ReplaceGroup(Group("p1", group), packages));
    keys.push_back({"p1", group, "missing.py", false});
    keys.push_back({"p2", group, "a.py", false});  // another project
  }
  keys.push_back({"p1", "no-such-group", "a.py", false});
  // What a show alone answers.
  const auto describe = [](const Result<std::optional<PackageRecord>>& found) -> std::string {
    if (!found) return "error: " + found.error().message;
    return *found ? Describe(**found) : "absent";
  };
  std::vector<std::string> expected;
  for (const auto& key : keys) {
    expected.push_back(describe(store().GetPackage(key.project, key.group, key.name)));
    if (key.stored)
      ASSERT_NE(expected.back().find("|o-" + key.group + "-" + key.name + "|"), std::string::npos)
          << expected.back();
    else
      ASSERT_EQ(expected.back(), "absent");
  }

  constexpr int kThreads = 16, kRounds = 40;
  std::atomic<int> wrong{0};
  std::latch start(kThreads);
  std::vector<std::thread> showers;
  for (int t = 0; t < kThreads; ++t) {
    showers.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int round = 0; round < kRounds; ++round) {
        // Half the threads show the same package at once, the others each their own.
        const std::size_t k = t % 2 == 0 ? round % keys.size() : (t * 7 + round) % keys.size();
        const auto& key = keys[k];
        if (describe(store().GetPackage(key.project, key.group, key.name)) != expected[k]) {
          ++wrong;
        }
      }
    });
  }
  for (auto& t : showers) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

// A show that starts after a write committed sees it, however many shows run beside it.
TEST_P(MetadataStoreContract, ShowsAmongManyNeverSeeDataOlderThanAWriteBeforeThem) {
  Must(store().ReplaceGroup(Group("p1", "g1"),
                            {Package("p1", "g1", "a.py"), Package("p1", "g1", "b.py")}));
  const auto other = Must(backend_->Connect()).metadata;
  constexpr int kWrites = 60, kReaders = 8;
  std::atomic<int> committed{0};
  std::atomic<bool> writing{true};
  std::atomic<int> stale{0}, failed{0}, shows{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&, r] {
      while (writing) {
        const int before = committed.load();
        const std::string name = r % 4 == 0 ? "b.py" : "a.py";  // batches of mixed keys
        const auto found = store().GetPackage("p1", "g1", name);
        if (!found || !*found) {
          ++failed;
          continue;
        }
        ++shows;
        if (name == "a.py" && (*found)->owner != "owner1" &&
            std::stoi((*found)->owner.substr(1)) < before)
          ++stale;
        if (name == "a.py" && (*found)->owner == "owner1" && before > 0) ++stale;
      }
    });
  }
  for (int v = 1; v <= kWrites; ++v) {
    // Each write lands among shows: wait (bounded) until the readers have shown again.
    const int shown = shows.load();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (shows.load() < shown + kReaders && failed.load() == 0 &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::yield();
    Must(other->SetPackageOwner("p1", "g1", "a.py", "v" + std::to_string(v), 2000 + v));
    committed = v;
    // This thread's own show after its write, among the readers' shows.
    const auto seen = Stored("p1", "g1", "a.py");
    if (seen.owner != "v" + std::to_string(v)) ++stale;
  }
  writing = false;
  for (auto& t : readers) t.join();
  EXPECT_EQ(stale.load(), 0);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GE(shows.load(), kWrites * kReaders);
}

TEST_P(MetadataStoreContract, ConcurrentReplacesNeverMix) {
  constexpr int kWriters = 8;
  constexpr int kRounds = 50;
  auto SetOf = [](int writer) {
    GroupRecord group = Group("p1", "shared", 1000 + writer);
    group.owner = "owner" + std::to_string(writer);
    const int count = 1 + writer % 3;
    group.packages.push_back(Package("p1", "shared", "common.py", 1000 + writer));
    group.packages.back().sha256 = "sha-common-" + std::to_string(writer);
    for (int i = 1; i < count; ++i) {
      group.packages.push_back(
          Package("p1", "shared", "w" + std::to_string(writer) + "-" + std::to_string(i) + ".py",
                  1000 + writer));
    }
    return group;
  };
  auto WhoseSet = [&](const GroupRecord& seen) {
    for (int w = 0; w < kWriters; ++w) {
      auto expected = SetOf(w);
      expected.create_time = seen.create_time;  // the first writer's, kept since
      if (Describe(seen) == Describe(expected)) return w;
    }
    return -1;
  };

  std::atomic<int> failures{0};
  std::atomic<int> mixed_reads{0};
  std::atomic<bool> writing{true};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      const auto set = SetOf(w);
      for (int round = 0; round < kRounds; ++round) {
        const auto result = store().ReplaceGroup(set, set.packages);
        if (!result || WhoseSet(*result) != w) ++failures;
      }
    });
  }
  const auto other_instance = Must(backend_->Connect()).metadata;
  std::thread reader([&] {
    while (writing) {
      const auto seen = other_instance->GetGroup("p1", "shared");
      if (!seen)
        ++failures;
      else if (*seen && WhoseSet(**seen) < 0)
        ++mixed_reads;
    }
  });
  for (auto& t : writers) t.join();
  writing = false;
  reader.join();

  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mixed_reads.load(), 0);
  EXPECT_GE(WhoseSet(StoredGroup("p1", "shared")), 0) << Describe(StoredGroup("p1", "shared"));
}

INSTANTIATE_TEST_SUITE_P(Backends, MetadataStoreContract,
                         ::testing::ValuesIn(test::StoreBackends()),
                         [](const auto& info) { return info.param.name; });

// ---- SQLite specifics: schema versions, files, several connections on one file ----

std::int64_t UserVersion(const fs::path& file) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  std::int64_t version = -1;
  sqlite3_exec(
      db, "PRAGMA user_version",
      [](void* out, int, char** values, char**) {
        *static_cast<std::int64_t*>(out) = std::stoll(values[0]);
        return 0;
      },
      &version, nullptr);
  sqlite3_close(db);
  return version;
}

void ExecRaw(const fs::path& file, const char* sql) {
  sqlite3* db = nullptr;
  sqlite3_open(file.c_str(), &db);
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &error);
  const std::string message = error != nullptr ? error : "";
  sqlite3_free(error);
  sqlite3_close(db);
  if (rc != SQLITE_OK) throw std::runtime_error("raw sqlite: " + message);
}

std::string JournalMode(const fs::path& file) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  std::string mode;
  sqlite3_exec(
      db, "PRAGMA journal_mode",
      [](void* out, int, char** values, char**) {
        *static_cast<std::string*>(out) = values[0];
        return 0;
      },
      &mode, nullptr);
  sqlite3_close(db);
  return mode;
}

TEST(SqliteMetadataStore, CreatesItsDirectoryUsesWalAndReopensWithoutMigratingAgain) {
  TempDir dir;
  const auto file = dir.path() / "a" / "b" / "metadata.db";
  {
    auto store = Must(SqliteMetadataStore::Open(file));
    Must(store->ReplaceGroup(Group("p1", "g1"), {Package("p1", "g1", "a.py")}));
  }
  const auto version = UserVersion(file);
  EXPECT_GE(version, 1);
  EXPECT_EQ(JournalMode(file), "wal");
  {
    auto store = Must(SqliteMetadataStore::Open(file));
    EXPECT_TRUE(Must(store->GetPackage("p1", "g1", "a.py")));
  }
  EXPECT_EQ(UserVersion(file), version);
}

TEST(SqliteMetadataStore, RefusesADatabaseFromANewerSchema) {
  TempDir dir;
  const auto file = dir.path() / "metadata.db";
  Must(SqliteMetadataStore::Open(file));
  ExecRaw(file, "PRAGMA user_version = 999");
  const auto reopened = SqliteMetadataStore::Open(file);
  ASSERT_FALSE(reopened);
  EXPECT_EQ(reopened.error().code, ErrorCode::kInternal);
  EXPECT_NE(reopened.error().message.find("newer"), std::string::npos);
  EXPECT_EQ(UserVersion(file), 999);
}

TEST(SqliteMetadataStore, OpenFailuresNameNoPath) {
  TempDir dir;
  ExecRaw(dir.path() / "plain-file", "CREATE TABLE t (x)");  // a file where a directory should be
  const auto under_file = SqliteMetadataStore::Open(dir.path() / "plain-file" / "metadata.db");
  ASSERT_FALSE(under_file);
  EXPECT_EQ(under_file.error().code, ErrorCode::kInternal);
  EXPECT_EQ(under_file.error().message.find(dir.path().string()), std::string::npos)
      << under_file.error().message;

  fs::create_directories(dir.path() / "a-directory");
  const auto is_directory = SqliteMetadataStore::Open(dir.path() / "a-directory");
  ASSERT_FALSE(is_directory);
  EXPECT_EQ(is_directory.error().message.find(dir.path().string()), std::string::npos)
      << is_directory.error().message;
}

// Opens `count` stores on one file at the same moment, as server processes starting together.
std::vector<std::unique_ptr<SqliteMetadataStore>> OpenTogether(const fs::path& file, int count) {
  std::vector<std::unique_ptr<SqliteMetadataStore>> stores(count);
  std::vector<std::string> errors(count);
  std::latch start(count);
  std::vector<std::thread> openers;
  for (int s = 0; s < count; ++s) {
    openers.emplace_back([&, s] {
      start.arrive_and_wait();
      auto store = SqliteMetadataStore::Open(file);
      if (store)
        stores[s] = std::move(*store);
      else
        errors[s] = store.error().message;
    });
  }
  for (auto& t : openers) t.join();
  for (const auto& error : errors) EXPECT_EQ(error, "");
  return stores;
}

// Several stores on one file, as several server processes: opening a new database at once
// migrates it once, and writes through all of them wait for each other instead of failing.
TEST(SqliteMetadataStore, SeveralStoresShareOneFile) {
  TempDir dir;
  constexpr int kStores = 4;
  for (int round = 0; round < 5; ++round) {  // the race on a new file is short: run it a few times
    OpenTogether(dir.path() / ("race-" + std::to_string(round) + ".db"), kStores);
  }
  const auto file = dir.path() / "metadata.db";
  auto stores = OpenTogether(file, kStores);
  ASSERT_FALSE(::testing::Test::HasFailure());
  EXPECT_GE(UserVersion(file), 1);

  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  for (int s = 0; s < kStores; ++s) {
    writers.emplace_back([&, s] {
      for (int i = 0; i < 10; ++i) {
        const auto name = "s" + std::to_string(s) + "-" + std::to_string(i) + ".py";
        if (!stores[s]->MergeIntoGroup(Group("p1", "g1"), {Package("p1", "g1", name)})) ++failures;
      }
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(failures.load(), 0);
  for (const auto& store : stores) {
    const auto group = Must(store->GetGroup("p1", "g1"));
    ASSERT_TRUE(group);
    EXPECT_EQ(group->packages.size(), static_cast<std::size_t>(kStores * 10));
  }
}

}  // namespace
}  // namespace dlipkg
