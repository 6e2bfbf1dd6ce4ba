// Contract of JobQueue (ports/job_queue.hpp), one suite run against every backend of
// store_backends.hpp, reading package states through MetadataStore. Times are explicit now_ms
// values: a lease "runs out" because a later now is passed, never by sleeping.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <latch>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "contract/record_helpers.hpp"
#include "contract/store_backends.hpp"
#include "ports/job_queue.hpp"
#include "ports/metadata_store.hpp"

namespace dlipkg {
namespace {

using test::BackendFactory;
using test::Describe;
using test::Group;
using test::Must;
using test::Names;
using test::Package;

constexpr std::int64_t kDeadline = 9'000'000;
constexpr std::size_t kRoomy = 1000;  // a queue bound no test reaches unless it means to

BlobInfo Blob(const std::string& sha256, std::int64_t size) { return BlobInfo{sha256, size}; }

class JobQueueContract : public ::testing::TestWithParam<BackendFactory> {
 protected:
  void SetUp() override {
    if (const auto why = GetParam().skip_reason(); !why.empty()) GTEST_SKIP() << why;
    backend_ = GetParam().make();
    store_ = Must(backend_->Connect());
  }

  MetadataStore& metadata() { return *store_.metadata; }
  JobQueue& jobs() { return *store_.jobs; }

  // Queues uploads of `names` into group (p1, group), or ungrouped when group is "".
  EnqueuedUploads Enqueue(const std::string& group, const std::vector<std::string>& names,
                          std::size_t max_queued = kRoomy) {
    return Must(TryEnqueue(group, names, max_queued));
  }

  Result<EnqueuedUploads> TryEnqueue(const std::string& group,
                                     const std::vector<std::string>& names, std::size_t max_queued,
                                     const std::string& project = "p1") {
    std::vector<PackageRecord> packages;
    std::vector<std::string> urls;
    for (const auto& name : names) {
      auto p = Package(project, group, name, 5000);
      p.sha256 = "";  // the caller does not know the bytes yet
      p.size = 0;
      packages.push_back(p);
      urls.push_back("obs://bucket/" + name);
    }
    std::optional<GroupRecord> target;
    if (!group.empty()) target = Group(project, group, 5000);
    return jobs().EnqueueUploads(target, packages, urls, kDeadline, max_queued);
  }

  UploadJob Claim(const std::string& worker, std::int64_t now_ms, std::int64_t lease_until_ms) {
    auto job = Must(jobs().ClaimJob(worker, now_ms, lease_until_ms));
    if (!job) throw std::runtime_error("nothing to claim at " + std::to_string(now_ms));
    return *job;
  }

  // Queues `count` ungrouped jobs, then has 4 workers claim with `claim` until none is left:
  // two on this store and two on `second`, another instance on the same database. The ids
  // claimed, in any order; `errors` counts claims that failed.
  using ClaimFn = std::function<Result<std::vector<UploadJob>>(JobQueue&, const std::string&)>;
  std::vector<std::int64_t> ClaimConcurrently(JobQueue& second, int count, const ClaimFn& claim,
                                              int& errors) {
    for (int batch = 0; batch < count / 50; ++batch) {
      std::vector<std::string> names;
      for (int i = 0; i < 50; ++i) names.push_back("f" + std::to_string(batch * 50 + i));
      Enqueue("", names);
    }
    constexpr int kWorkers = 4;
    std::mutex mutex;
    std::vector<std::int64_t> claimed;
    std::atomic<int> failed{0};
    std::latch start(kWorkers);
    std::vector<std::thread> workers;
    for (int w = 0; w < kWorkers; ++w) {
      workers.emplace_back([&, w] {
        start.arrive_and_wait();
        for (;;) {
          auto got = claim(w % 2 == 0 ? jobs() : second, "w" + std::to_string(w));
          if (!got) {
            ++failed;
            return;
          }
          if (got->empty()) return;
          std::lock_guard lock(mutex);
          for (const auto& job : *got) claimed.push_back(job.id);
        }
      });
    }
    for (auto& t : workers) t.join();
    errors = failed.load();
    return claimed;
  }

  bool NothingDue(const std::string& worker, std::int64_t now_ms) {
    return !Must(jobs().ClaimJob(worker, now_ms, now_ms + 1000)).has_value();
  }

  PackageRecord Stored(const std::string& group, const std::string& name) {
    auto found = Must(metadata().GetPackage("p1", group, name));
    if (!found) throw std::runtime_error("package " + group + "/" + name + " absent");
    return *found;
  }

  std::unique_ptr<test::StoreBackend> backend_;  // outlives store_: declared first
  test::StoreUnderTest store_;
};

// ---- Enqueueing ----

TEST_P(JobQueueContract, EnqueueCreatesTheGroupWithUploadingPackagesAndOneJobEach) {
  const auto queued = Enqueue("g1", {"b.py", "a.py"});

  ASSERT_TRUE(queued.group);
  EXPECT_EQ(queued.group->owner, "owner1");
  EXPECT_EQ(queued.group->create_time, 5000);
  EXPECT_EQ(Names(queued.group->packages), (std::vector<std::string>{"b.py", "a.py"}));
  ASSERT_EQ(Names(queued.packages), (std::vector<std::string>{"b.py", "a.py"}));
  for (const auto& p : queued.packages) {
    EXPECT_EQ(p.status, PackageStatus::kUploading) << p.name;
    EXPECT_TRUE(p.is_async) << p.name;
    EXPECT_EQ(p.sha256, "") << p.name;
    EXPECT_EQ(p.size, 0) << p.name;
    EXPECT_EQ(Describe(Stored("g1", p.name)), Describe(p));
  }
  EXPECT_EQ(Describe(*queued.group), Describe(*Must(metadata().GetGroup("p1", "g1"))));
  EXPECT_EQ(Must(jobs().CountQueued()), 2u);

  // Due at once, in the order queued, with what the worker needs to fetch them.
  const auto first = Claim("w1", 1, 100);
  const auto second = Claim("w1", 1, 100);
  EXPECT_EQ(first.name, "b.py");
  EXPECT_EQ(first.group, "g1");
  EXPECT_EQ(first.project, "p1");
  EXPECT_EQ(first.url, "obs://bucket/b.py");
  EXPECT_EQ(first.deadline_ms, kDeadline);
  EXPECT_EQ(first.attempts, 1);
  EXPECT_EQ(second.name, "a.py");
  EXPECT_LT(first.id, second.id);
  EXPECT_EQ(queued.job_ids, (std::vector<std::int64_t>{first.id, second.id}));
}

TEST_P(JobQueueContract, EnqueueMergesIntoAnExistingGroupKeepingTheOthers) {
  GroupRecord existing = Group("p1", "g1", 1000);
  existing.owner = "creator";
  existing.description = "kept";
  Must(metadata().ReplaceGroup(existing,
                               {Package("p1", "g1", "a.py"), Package("p1", "g1", "b.py")}));

  const auto queued = Enqueue("g1", {"b.py", "c.py"});

  ASSERT_TRUE(queued.group);
  EXPECT_EQ(queued.group->owner, "creator");
  EXPECT_EQ(queued.group->description, "kept");
  EXPECT_EQ(queued.group->create_time, 1000);
  EXPECT_EQ(queued.group->update_time, 5000);
  EXPECT_EQ(Names(queued.group->packages), (std::vector<std::string>{"a.py", "b.py", "c.py"}));
  EXPECT_EQ(Stored("g1", "a.py").status, PackageStatus::kReady);
  EXPECT_EQ(Stored("g1", "b.py").status, PackageStatus::kUploading);
  EXPECT_EQ(Stored("g1", "b.py").create_time, 1000);  // a replaced package keeps its identity
  EXPECT_EQ(Stored("g1", "c.py").status, PackageStatus::kUploading);
  EXPECT_EQ(Must(jobs().CountQueued()), 2u);
}

TEST_P(JobQueueContract, EnqueueUngroupedWritesPackagesWithoutAGroup) {
  const auto queued = Enqueue("", {"x.txt", "y.txt"});

  EXPECT_FALSE(queued.group);
  ASSERT_EQ(Names(queued.packages), (std::vector<std::string>{"x.txt", "y.txt"}));
  EXPECT_EQ(Describe(Stored("", "x.txt")), Describe(queued.packages[0]));
  EXPECT_EQ(Stored("", "y.txt").status, PackageStatus::kUploading);
  const auto contents = Must(metadata().ListProject("p1"));
  EXPECT_TRUE(contents.groups.empty());
  EXPECT_EQ(Names(contents.ungrouped), (std::vector<std::string>{"x.txt", "y.txt"}));
  EXPECT_EQ(Claim("w1", 1, 100).group, "");
}

TEST_P(JobQueueContract, QueueBoundRefusesWithNothingWritten) {
  Enqueue("g1", {"a.py", "b.py"}, 3);

  const auto refused = TryEnqueue("g2", {"c.py", "d.py"}, 3);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kQuotaExceeded);
  EXPECT_FALSE(Must(metadata().GetGroup("p1", "g2")));
  EXPECT_FALSE(Must(metadata().GetPackage("p1", "g2", "c.py")));
  EXPECT_FALSE(TryEnqueue("", {"u1", "u2"}, 3));
  EXPECT_FALSE(Must(metadata().GetPackage("p1", "", "u1")));
  EXPECT_EQ(Must(jobs().CountQueued()), 2u);

  Enqueue("g1", {"c.py"}, 3);  // exactly at the bound is allowed
  EXPECT_EQ(Must(jobs().CountQueued()), 3u);
}

// Issue 15: the bound is per project (DLI's quota), so one project's full queue does not
// block the others.
TEST_P(JobQueueContract, QueueBoundIsPerProject) {
  Enqueue("g1", {"a.py", "b.py", "c.py"}, 3);
  EXPECT_FALSE(TryEnqueue("g1", {"d.py"}, 3));
  const auto other = TryEnqueue("g1", {"a.py", "b.py", "c.py"}, 3, "p2");
  ASSERT_TRUE(other) << other.error().message;
  EXPECT_FALSE(TryEnqueue("g2", {"e.py"}, 3, "p2"));
  EXPECT_EQ(Must(jobs().CountQueued()), 6u);
}

// ---- Enqueueing many packages at once (one statement each for all of a request's rows) ----

// A replaced package stays where it was in its group; new ones follow the group's last, in
// request order; each package's job is its own.
TEST_P(JobQueueContract, AMixedEnqueueKeepsReplacedPackagesInPlaceAndAppendsNewOnesInOrder) {
  Must(metadata().ReplaceGroup(
      Group("p1", "g1", 1000),
      {Package("p1", "g1", "c.py"), Package("p1", "g1", "a.py"), Package("p1", "g1", "b.py")}));
  // A longer group elsewhere, so positions counted over the wrong rows would show.
  std::vector<PackageRecord> others;
  for (int i = 0; i < 6; ++i) others.push_back(Package("p1", "g0", "o" + std::to_string(i)));
  Must(metadata().ReplaceGroup(Group("p1", "g0", 1000), others));

  const auto queued = Enqueue("g1", {"e.py", "a.py", "d.py", "c.py", "f.py"});

  ASSERT_TRUE(queued.group);
  EXPECT_EQ(Names(queued.group->packages),
            (std::vector<std::string>{"c.py", "a.py", "b.py", "e.py", "d.py", "f.py"}));
  EXPECT_EQ(Describe(*queued.group), Describe(*Must(metadata().GetGroup("p1", "g1"))));
  ASSERT_EQ(Names(queued.packages),
            (std::vector<std::string>{"e.py", "a.py", "d.py", "c.py", "f.py"}));
  for (const auto& p : queued.packages) EXPECT_EQ(Describe(Stored("g1", p.name)), Describe(p));
  EXPECT_EQ(Names(Must(metadata().GetGroup("p1", "g0"))->packages), Names(others));
  // A later write still appends after the last.
  Must(metadata().MergeIntoGroup(Group("p1", "g1", 6000), {Package("p1", "g1", "0.py")}));
  EXPECT_EQ(Names(Must(metadata().GetGroup("p1", "g1"))->packages),
            (std::vector<std::string>{"c.py", "a.py", "b.py", "e.py", "d.py", "f.py", "0.py"}));

  ASSERT_EQ(queued.job_ids.size(), 5u);
  for (std::size_t i = 0; i < queued.job_ids.size(); ++i) {
    const auto job = Claim("w1", 1, 100);  // in the order queued
    EXPECT_EQ(job.id, queued.job_ids[i]);
    EXPECT_EQ(job.name, queued.packages[i].name);
    EXPECT_EQ(job.url, "obs://bucket/" + job.name);
  }
  EXPECT_TRUE(NothingDue("w1", 1));
}

// The stored bytes, identity and place of a replaced package stay; its kind, owner, tags and
// status are the request's; its job is the new one (an earlier job is superseded).
TEST_P(JobQueueContract, AReplacedPackageKeepsItsBytesAndPlaceAndTakesTheRequestsFieldsAndJob) {
  for (const std::string group : {"g1", ""}) {
    SCOPED_TRACE("group '" + group + "'");
    auto old_x = Package("p1", group, "x.py", 1000);
    old_x.sha256 = "shaOld";
    old_x.size = 111;
    old_x.underlying_name = "u-old";
    old_x.tags = {{"team", "old"}, {"gone", "1"}};
    const std::vector<PackageRecord> before{Package("p1", group, "a.py"), old_x,
                                            Package("p1", group, "z.py")};
    if (group.empty())
      Must(metadata().PutUngrouped(before));
    else
      Must(metadata().ReplaceGroup(Group("p1", group, 1000), before));
    const auto earlier = Must(TryEnqueue(group, {"x.py"}, kRoomy)).job_ids.at(0);

    std::vector<PackageRecord> request;
    for (const std::string name : {"n.py", "x.py"}) {
      auto p = Package("p1", group, name, 5000);
      p.sha256 = "";
      p.size = 0;
      p.underlying_name = "u-new-" + name;
      p.kind = PackageKind::kFile;
      p.owner = "owner2";
      p.tags = {{"team", "new"}, {"extra", ""}};
      request.push_back(p);
    }
    std::optional<GroupRecord> target;
    if (!group.empty()) target = Group("p1", group, 5000);
    const auto queued = Must(jobs().EnqueueUploads(
        target, request, {"obs://b/n.py", "obs://b/x.py"}, kDeadline, kRoomy));

    ASSERT_EQ(queued.packages.size(), 2u);
    const PackageRecord& x = queued.packages[1];
    EXPECT_EQ(Describe(Stored(group, "x.py")), Describe(x));
    EXPECT_EQ(x.status, PackageStatus::kUploading);
    EXPECT_TRUE(x.is_async);
    EXPECT_EQ(x.sha256, "shaOld");
    EXPECT_EQ(x.size, 111);
    EXPECT_EQ(x.underlying_name, "u-old");
    EXPECT_EQ(x.create_time, 1000);
    EXPECT_EQ(x.update_time, 5000);
    EXPECT_EQ(x.kind, PackageKind::kFile);
    EXPECT_EQ(x.owner, "owner2");
    EXPECT_EQ(x.tags, (std::vector<Tag>{{"team", "new"}, {"extra", ""}}));
    const PackageRecord& n = queued.packages[0];
    EXPECT_EQ(Describe(Stored(group, "n.py")), Describe(n));
    EXPECT_EQ(n.sha256, "");
    EXPECT_EQ(n.size, 0);
    EXPECT_EQ(n.underlying_name, "u-new-n.py");
    EXPECT_EQ(n.create_time, 5000);
    EXPECT_EQ(n.tags, x.tags);
    if (!group.empty()) {
      EXPECT_EQ(Names(Must(metadata().GetGroup("p1", group))->packages),
                (std::vector<std::string>{"a.py", "x.py", "z.py", "n.py"}));
    }
    EXPECT_TRUE(Must(metadata().IsBlobReferenced("shaOld")));
    // The earlier job of x.py is superseded: claims see only this request's jobs.
    const auto first = Claim("w1", 1, 100);
    const auto second = Claim("w1", 1, 100);
    EXPECT_TRUE(NothingDue("w1", 1));
    EXPECT_NE(first.id, earlier);
    EXPECT_EQ(std::vector<std::int64_t>({first.id, second.id}), queued.job_ids);
    EXPECT_EQ(second.name, "x.py");
    Must(jobs().CompleteJob(second, "w1", Blob("shaNew", 222), "u-done", 6000));
    EXPECT_EQ(Stored(group, "x.py").sha256, "shaNew");
    Must(jobs().FailJob(first, "w1", "gave up", 6000));
  }
}

// The listing finds queued packages by name (SQLite's name index is kept by triggers) and by
// tag, and its totals move with them (the listing-change counters are kept by triggers too).
TEST_P(JobQueueContract, QueuedPackagesAreListedByNameAndTagWithRightTotals) {
  const auto page = [&](PackageFilter filter) {
    return Must(metadata().ListPage({.project = "p1", .filter = std::move(filter), .limit = 100}));
  };
  const PackageFilter by_name{.name_contains = "lpha-1"};
  const PackageFilter by_tag{.tags = {{.key = "team", .value = "blue"}}};
  auto old = Package("p1", "g1", "alpha-10.py");
  old.tags = {{"team", "red"}};
  Must(metadata().ReplaceGroup(Group("p1", "g1"), {old}));
  EXPECT_EQ(page(by_name).total, 1u);  // counted now, remembered for the same listing version
  EXPECT_EQ(page(by_tag).total, 0u);

  std::vector<PackageRecord> request;
  std::vector<std::string> urls;
  for (int i = 0; i < 30; ++i) {
    auto p = Package("p1", "g1", "alpha-" + std::to_string(i) + ".py", 5000);
    p.tags = {{"team", "blue"}};
    request.push_back(p);
    urls.push_back("obs://b/" + p.name);
  }
  Must(jobs().EnqueueUploads(Group("p1", "g1", 5000), request, urls, kDeadline, kRoomy));
  request.resize(3);  // and three ungrouped ones
  urls.resize(3);
  for (auto& p : request) p.group = "";
  Must(jobs().EnqueueUploads(std::nullopt, request, urls, kDeadline, kRoomy));

  // alpha-1, alpha-10 .. alpha-19, in g1 and (alpha-1) ungrouped; alpha-10 once in g1.
  const auto named = page(by_name);
  EXPECT_EQ(named.total, 12u);
  std::vector<std::string> keys;
  for (const auto& p : named.packages) keys.push_back(p.group + "/" + p.name);
  std::vector<std::string> expected{"/alpha-1.py", "g1/alpha-1.py"};
  for (int i = 10; i < 20; ++i) expected.push_back("g1/alpha-" + std::to_string(i) + ".py");
  EXPECT_EQ(keys, expected);
  for (const auto& p : named.packages) EXPECT_EQ(p.status, PackageStatus::kUploading);
  EXPECT_EQ(page(by_tag).total, 33u);  // alpha-10's tag was replaced too
  EXPECT_EQ(page(PackageFilter{.tags = {{.key = "team", .value = "red"}}}).total, 0u);
  EXPECT_EQ(page(PackageFilter{.name_contains = "lpha-"}).total, 33u);
}

// A refused request leaves every stored row as it was: packages, tags, groups, jobs, listing.
TEST_P(JobQueueContract, ARefusedEnqueueChangesNothing) {
  auto a = Package("p1", "g1", "a.py");
  a.tags = {{"team", "red"}};
  Must(metadata().ReplaceGroup(Group("p1", "g1"), {a}));
  Must(metadata().PutUngrouped({Package("p1", "", "u.py")}));
  Enqueue("g2", {"q.py"}, 2);
  const std::string group_before = Describe(*Must(metadata().GetGroup("p1", "g1")));
  const std::string ungrouped_before = Describe(Stored("", "u.py"));

  for (const std::string group : {"g1", ""}) {
    const auto refused = TryEnqueue(group, {"a.py", "u.py", "new.py"}, 2);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, ErrorCode::kQuotaExceeded);
  }

  EXPECT_EQ(Describe(*Must(metadata().GetGroup("p1", "g1"))), group_before);
  EXPECT_EQ(Describe(Stored("", "u.py")), ungrouped_before);
  EXPECT_FALSE(Must(metadata().GetPackage("p1", "", "new.py")));
  EXPECT_EQ(Must(jobs().CountQueued()), 1u);
  EXPECT_EQ(Must(metadata().ListPage({.project = "p1", .filter = {.name_contains = "new"}})).total,
            0u);
  EXPECT_EQ(Claim("w1", 1, 100).name, "q.py");
}

// Each package of a request keeps its own fields, also when they differ from the others'
// (the API gives them all the same, which a store may take advantage of).
TEST_P(JobQueueContract, PackagesOfOneRequestThatDifferInEveryFieldKeepTheirOwn) {
  for (const std::string group : {"g1", ""}) {
    SCOPED_TRACE("group '" + group + "'");
    std::vector<PackageRecord> request;
    const PackageKind kinds[] = {PackageKind::kJar, PackageKind::kFile, PackageKind::kModelFile};
    for (int i = 0; i < 3; ++i) {
      auto p = Package("p1", group, "d" + std::to_string(i), 5000 + i);
      p.sha256 = "";
      p.size = 0;
      p.kind = kinds[i];
      p.underlying_name = "under-" + std::to_string(i);
      p.owner = "owner-" + std::to_string(i);
      p.update_time = 7000 + i;
      p.status_reason = "reason-" + std::to_string(i);
      request.push_back(p);
    }
    std::optional<GroupRecord> target;
    if (!group.empty()) target = Group("p1", group, 5000);
    const auto queued = Must(jobs().EnqueueUploads(
        target, request, {"obs://b/0", "obs://b/1", "obs://b/2"}, kDeadline, kRoomy));
    ASSERT_EQ(queued.packages.size(), 3u);
    for (int i = 0; i < 3; ++i) {
      PackageRecord expected = request[i];
      expected.status = PackageStatus::kUploading;
      expected.is_async = true;
      EXPECT_EQ(Describe(queued.packages[i]), Describe(expected));
      EXPECT_EQ(Describe(Stored(group, expected.name)), Describe(expected));
    }
  }
}

// The request's rows reach the store as one JSON text: quotes, backslashes, JSON syntax and
// non-ASCII characters in names and tags come back exactly.
TEST_P(JobQueueContract, NamesAndTagsWithQuotesBackslashesAndNonAsciiAreWrittenExactly) {
  const std::vector<std::string> names{"it's \"q\".py", "back\\slash\\n.py", "na\u00efve-\u65e5.py",
                                       "{\"name\": [1]}.py", "1234"};
  for (const std::string group : {"g1", ""}) {
    SCOPED_TRACE("group '" + group + "'");
    std::vector<PackageRecord> request;
    std::vector<std::string> urls;
    for (const auto& name : names) {
      auto p = Package("p1", group, name, 5000);
      p.sha256 = "";
      p.size = 0;
      p.owner = "o'\"\\";
      p.tags = {{"k'\"", "v\\\u00e9"}, {"2", "3"}};
      request.push_back(p);
      urls.push_back("obs://b/" + name);
    }
    std::optional<GroupRecord> target;
    if (!group.empty()) target = Group("p1", group, 5000);
    const auto queued = Must(jobs().EnqueueUploads(target, request, urls, kDeadline, kRoomy));
    EXPECT_EQ(Names(queued.packages), names);
    for (std::size_t i = 0; i < names.size(); ++i) {
      EXPECT_EQ(Describe(Stored(group, names[i])), Describe(queued.packages[i]));
      EXPECT_EQ(queued.packages[i].owner, "o'\"\\");
      EXPECT_EQ(queued.packages[i].tags, request[i].tags);
    }
    for (std::size_t i = 0; i < names.size(); ++i) {
      const auto job = Claim("w1", 1, 100);
      EXPECT_EQ(job.name, names[i]);
      EXPECT_EQ(job.url, "obs://b/" + names[i]);
      Must(jobs().FailJob(job, "w1", "done", 10));
    }
  }
}

// Names are unique in a request (the API refuses duplicates); a store given one anyway fails
// the whole request instead of writing a package twice.
TEST_P(JobQueueContract, ANameGivenTwiceInOneRequestFailsWithNothingWritten) {
  const auto failed = TryEnqueue("g1", {"a.py", "b.py", "a.py"}, kRoomy);
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, ErrorCode::kInternal);
  EXPECT_FALSE(Must(metadata().GetGroup("p1", "g1")));
  EXPECT_EQ(Must(jobs().CountQueued()), 0u);
}

// ---- Completing: old bytes stay until the new ones are committed ----

TEST_P(JobQueueContract, ReplacingAReadyPackageKeepsItsBytesUntilTheJobCompletes) {
  auto old_x = Package("p1", "", "x.txt");
  old_x.sha256 = "shaOld";
  old_x.size = 111;
  old_x.underlying_name = "u-old";
  Must(metadata().PutUngrouped({old_x}));

  const auto queued = Enqueue("", {"x.txt"});
  ASSERT_EQ(queued.packages.size(), 1u);
  for (const auto& p : {queued.packages[0], Stored("", "x.txt")}) {
    EXPECT_EQ(p.status, PackageStatus::kUploading);
    EXPECT_EQ(p.sha256, "shaOld");
    EXPECT_EQ(p.size, 111);
    EXPECT_EQ(p.underlying_name, "u-old");
    EXPECT_EQ(p.create_time, 1000);
  }
  EXPECT_TRUE(Must(metadata().IsBlobReferenced("shaOld")));

  const auto job = Claim("w1", 1000, 2000);
  const auto previous = Must(jobs().CompleteJob(job, "w1", Blob("shaNew", 222), "u-new", 1500));
  EXPECT_EQ(previous, std::optional<std::string>("shaOld"));

  const auto done = Stored("", "x.txt");
  EXPECT_EQ(done.status, PackageStatus::kReady);
  EXPECT_EQ(done.sha256, "shaNew");
  EXPECT_EQ(done.size, 222);
  EXPECT_EQ(done.underlying_name, "u-new");
  EXPECT_EQ(done.update_time, 1500);
  EXPECT_EQ(done.status_reason, "");
  EXPECT_TRUE(done.is_async);
  EXPECT_FALSE(Must(metadata().IsBlobReferenced("shaOld")));
  EXPECT_TRUE(Must(metadata().IsBlobReferenced("shaNew")));
  EXPECT_EQ(Must(jobs().CountQueued()), 0u);
  EXPECT_TRUE(NothingDue("w1", 100'000));
}

TEST_P(JobQueueContract, CompletingANewPackageReturnsNoPreviousBytes) {
  Enqueue("g1", {"a.py"});
  const auto job = Claim("w1", 1000, 2000);
  EXPECT_EQ(Must(jobs().CompleteJob(job, "w1", Blob("shaA", 5), "u-a", 1500)),
            std::optional<std::string>(""));
  EXPECT_EQ(Stored("g1", "a.py").status, PackageStatus::kReady);
  EXPECT_EQ(Must(metadata().GetGroup("p1", "g1"))->packages.at(0).sha256, "shaA");
}

// ---- Claims and leases ----

TEST_P(JobQueueContract, AClaimedJobIsNotClaimedAgainUntilItsLeaseRunsOut) {
  Enqueue("g1", {"a.py"});
  const auto first = Claim("w1", 1000, 2000);
  EXPECT_EQ(first.attempts, 1);
  EXPECT_TRUE(NothingDue("w1", 1000));
  EXPECT_TRUE(NothingDue("w2", 1999));

  const auto second = Claim("w2", 2500, 3500);  // w1 is presumed dead
  EXPECT_EQ(second.id, first.id);
  EXPECT_EQ(second.attempts, 2);
  EXPECT_TRUE(NothingDue("w3", 3000));
  EXPECT_EQ(Claim("w3", 4000, 5000).attempts, 3);
}

TEST_P(JobQueueContract, OnlyTheHolderRenewsALease) {
  Enqueue("g1", {"a.py"});
  const auto job = Claim("w1", 1000, 2000);
  EXPECT_FALSE(Must(jobs().RenewLease(job.id, "w2", 9000)));
  EXPECT_TRUE(Must(jobs().RenewLease(job.id, "w1", 5000)));
  EXPECT_TRUE(NothingDue("w2", 4999));  // renewed past the first lease
  EXPECT_EQ(Claim("w2", 5000, 6000).id, job.id);
  EXPECT_FALSE(Must(jobs().RenewLease(job.id, "w1", 9000)));         // w2 holds it now
  EXPECT_FALSE(Must(jobs().RenewLease(job.id + 1000, "w1", 9000)));  // no such job
}

TEST_P(JobQueueContract, AWorkerThatLostItsLeaseCannotSettleTheJob) {
  Enqueue("g1", {"a.py", "b.py"});
  const auto lost = Claim("w1", 1000, 2000);
  const auto taken = Claim("w2", 2500, 3500);
  ASSERT_EQ(taken.id, lost.id);

  EXPECT_EQ(Must(jobs().CompleteJob(lost, "w1", Blob("shaW1", 1), "u-w1", 2600)), std::nullopt);
  Must(jobs().FailJob(lost, "w1", "w1 gave up", 2600));
  Must(jobs().RetryJob(lost, "w1", 2700, "w1 retries"));
  const auto a = Stored("g1", "a.py");
  EXPECT_EQ(a.status, PackageStatus::kUploading);
  EXPECT_EQ(a.sha256, "");
  EXPECT_EQ(a.status_reason, "");
  EXPECT_FALSE(Must(metadata().IsBlobReferenced("shaW1")));
  EXPECT_EQ(Must(jobs().CountQueued()), 2u);
  EXPECT_EQ(Claim("w3", 2800, 3800).name, "b.py");  // a.py stays w2's: the retry was ignored

  EXPECT_EQ(Must(jobs().CompleteJob(taken, "w2", Blob("shaW2", 2), "u-w2", 2900)),
            std::optional<std::string>(""));
  EXPECT_EQ(Stored("g1", "a.py").sha256, "shaW2");
}

TEST_P(JobQueueContract, RetryMakesTheJobDueAgainAtTheGivenTime) {
  Enqueue("g1", {"a.py"});
  const auto job = Claim("w1", 1000, 60'000);
  Must(jobs().RetryJob(job, "w1", 5000, "503 from the source"));

  EXPECT_TRUE(NothingDue("w1", 4999));
  const auto again = Claim("w2", 5000, 6000);  // the lease was released, not waited out
  EXPECT_EQ(again.id, job.id);
  EXPECT_EQ(again.attempts, 2);
  EXPECT_EQ(Stored("g1", "a.py").status, PackageStatus::kUploading);
}

TEST_P(JobQueueContract, ClaimsTakeTheJobDueSoonestFirst) {
  Enqueue("", {"first", "second", "third"});
  const auto first = Claim("w1", 1000, 60'000);
  const auto second = Claim("w1", 1000, 60'000);
  Must(jobs().RetryJob(first, "w1", 3000, "later"));
  Must(jobs().RetryJob(second, "w1", 2000, "sooner"));
  EXPECT_EQ(Claim("w1", 1000, 60'000).name, "third");
  EXPECT_TRUE(NothingDue("w1", 1999));
  EXPECT_EQ(Claim("w1", 5000, 60'000).name, "second");
  EXPECT_EQ(Claim("w1", 5000, 60'000).name, "first");
}

// ---- Failing ----

TEST_P(JobQueueContract, FailMarksThePackageFailedAndKeepsItsPreviousBytes) {
  auto old_a = Package("p1", "g1", "a.py");
  old_a.sha256 = "shaOld";
  old_a.size = 7;
  Must(metadata().ReplaceGroup(Group("p1", "g1"), {old_a}));
  Enqueue("g1", {"a.py", "b.py"});

  const auto job = Claim("w1", 1000, 2000);
  Must(jobs().FailJob(job, "w1", "source returned 404", 1500));

  const auto a = Stored("g1", "a.py");
  EXPECT_EQ(a.status, PackageStatus::kFailed);
  EXPECT_EQ(a.status_reason, "source returned 404");
  EXPECT_EQ(a.sha256, "shaOld");
  EXPECT_EQ(a.size, 7);
  EXPECT_EQ(a.update_time, 1500);
  EXPECT_TRUE(Must(metadata().IsBlobReferenced("shaOld")));
  EXPECT_EQ(Must(jobs().CountQueued()), 1u);
  EXPECT_EQ(Claim("w1", 1000, 200'000).name, "b.py");  // the failed job is gone
  EXPECT_TRUE(NothingDue("w1", 100'000));
}

// ---- Superseding: a later write of the package wins over the job ----

struct Superseder {
  std::string name;
  std::function<void(MetadataStore&)> write;  // rewrites or deletes p1/g1/a.py
  bool package_remains;
};

std::vector<Superseder> Superseders() {
  auto newer = [] {
    auto p = Package("p1", "g1", "a.py", 8000);
    p.sha256 = "shaSync";
    return p;
  };
  return {
      {"MergeIntoGroup",
       [=](MetadataStore& m) { Must(m.MergeIntoGroup(Group("p1", "g1", 8000), {newer()})); }, true},
      {"ReplaceGroup",
       [=](MetadataStore& m) { Must(m.ReplaceGroup(Group("p1", "g1", 8000), {newer()})); }, true},
      {"DeletePackage", [](MetadataStore& m) { Must(m.DeletePackage("p1", "g1", "a.py")); }, false},
  };
}

// The same checks for each way of superseding, and for ungrouped packages (PutUngrouped).
class SupersedeChecks {
 public:
  SupersedeChecks(JobQueue& jobs, MetadataStore& metadata) : jobs_(jobs), metadata_(metadata) {}

  void AfterClaim(const std::string& group, const std::function<void()>& supersede,
                  bool package_remains) {
    const auto job = *Must(jobs_.ClaimJob("w1", 1000, 60'000));
    supersede();
    const auto before = metadata_.GetPackage("p1", group, "a.py");
    EXPECT_EQ(Must(jobs_.CompleteJob(job, "w1", Blob("shaAsync", 9), "u-async", 9000)),
              std::nullopt);
    Must(jobs_.FailJob(job, "w1", "too late", 9000));
    const auto after = Must(metadata_.GetPackage("p1", group, "a.py"));
    ASSERT_EQ(after.has_value(), package_remains);
    if (after) {
      EXPECT_EQ(Describe(*after), Describe(**before));
      EXPECT_EQ(after->sha256, "shaSync");
      EXPECT_EQ(after->status, PackageStatus::kReady);
    }
    EXPECT_FALSE(Must(metadata_.IsBlobReferenced("shaAsync")));
    EXPECT_EQ(Must(jobs_.CountQueued()), 0u);  // a superseded job is dropped on settling
  }

  void BeforeClaim(const std::function<void()>& supersede) {
    supersede();
    EXPECT_EQ(Must(jobs_.ClaimJob("w1", 1000, 60'000)), std::nullopt);
    EXPECT_EQ(Must(jobs_.CountQueued()), 0u);  // dropped on the way
  }

 private:
  JobQueue& jobs_;
  MetadataStore& metadata_;
};

TEST_P(JobQueueContract, SupersededJobsAreDiscarded) {
  SupersedeChecks checks(jobs(), metadata());
  for (const auto& superseder : Superseders()) {
    SCOPED_TRACE(superseder.name);
    Must(metadata().ReplaceGroup(Group("p1", "g1"), {}));
    Enqueue("g1", {"a.py"});
    checks.AfterClaim(
        "g1", [&] { superseder.write(metadata()); }, superseder.package_remains);
    Enqueue("g1", {"a.py"});
    checks.BeforeClaim([&] { superseder.write(metadata()); });
  }
  SCOPED_TRACE("PutUngrouped");
  auto newer = Package("p1", "", "a.py", 8000);
  newer.sha256 = "shaSync";
  Enqueue("", {"a.py"});
  checks.AfterClaim(
      "", [&] { Must(metadata().PutUngrouped({newer})); }, true);
  Enqueue("", {"a.py"});
  checks.BeforeClaim([&] { Must(metadata().PutUngrouped({newer})); });
}

TEST_P(JobQueueContract, EnqueueingAPackageAgainSupersedesItsEarlierJob) {
  Enqueue("g1", {"a.py"});
  const auto earlier = Claim("w1", 1000, 60'000);
  const auto queued = Enqueue("g1", {"a.py"});
  EXPECT_EQ(queued.packages.at(0).status, PackageStatus::kUploading);

  EXPECT_EQ(Must(jobs().CompleteJob(earlier, "w1", Blob("shaEarly", 1), "u", 2000)), std::nullopt);
  const auto later = Claim("w2", 1000, 60'000);
  EXPECT_NE(later.id, earlier.id);
  EXPECT_EQ(Must(jobs().CompleteJob(later, "w2", Blob("shaLate", 2), "u", 3000)),
            std::optional<std::string>(""));
  EXPECT_EQ(Stored("g1", "a.py").sha256, "shaLate");
  EXPECT_EQ(Must(jobs().CountQueued()), 0u);
}

// ---- Start-up recovery ----

TEST_P(JobQueueContract, RecoveryFailsUploadsWithoutAJobAndTreatsLeasesByDeployment) {
  Enqueue("g1", {"a.py", "b.py"});
  const auto leased = Claim("w-before-restart", 1000, 1'000'000);
  auto orphan = Package("p1", "", "orphan.txt", 1000);  // UPLOADING, but no job will ever run
  orphan.status = PackageStatus::kUploading;
  orphan.sha256 = "shaKept";
  Must(metadata().PutUngrouped({orphan}));

  EXPECT_EQ(Must(jobs().RecoverAfterRestart(2000)), 2u);

  const auto failed = Stored("", "orphan.txt");
  EXPECT_EQ(failed.status, PackageStatus::kFailed);
  EXPECT_NE(failed.status_reason, "");
  EXPECT_EQ(failed.update_time, 2000);
  EXPECT_EQ(failed.sha256, "shaKept");
  EXPECT_EQ(Stored("g1", "a.py").status, PackageStatus::kUploading);  // its job is queued
  EXPECT_EQ(Stored("g1", "b.py").status, PackageStatus::kUploading);

  const auto next = Claim("w-after-restart", 2000, 3000);
  if (GetParam().recovery_releases_leases) {
    EXPECT_EQ(next.id, leased.id);  // whoever held it is gone
  } else {
    EXPECT_EQ(next.name, "b.py");  // the holder may be another instance, alive
    EXPECT_TRUE(Must(jobs().RenewLease(leased.id, "w-before-restart", 1'000'000)));
  }
}

// ---- Several workers ----

// Two stores on one database, as two server instances, with two workers each.
TEST_P(JobQueueContract, ConcurrentClaimsTakeEveryJobExactlyOnce) {
  constexpr int kJobs = 200;
  const test::StoreUnderTest second = Must(backend_->Connect());
  int errors = 0;
  const auto claimed = ClaimConcurrently(
      *second.jobs, kJobs,
      [](JobQueue& queue, const std::string& worker) -> Result<std::vector<UploadJob>> {
        auto job = queue.ClaimJob(worker, 1000, 60'000);
        if (!job) return std::unexpected(job.error());
        if (!*job) return std::vector<UploadJob>{};
        return std::vector<UploadJob>{**job};
      },
      errors);
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(claimed.size(), static_cast<std::size_t>(kJobs));
  EXPECT_EQ(std::set<std::int64_t>(claimed.begin(), claimed.end()).size(),
            static_cast<std::size_t>(kJobs));
  EXPECT_EQ(Must(jobs().CountQueued()), static_cast<std::size_t>(kJobs));  // claimed, not done
}

// ---- Batched claims and completions ----

std::vector<std::string> JobNames(const std::vector<UploadJob>& jobs) {
  std::vector<std::string> names;
  for (const auto& job : jobs) names.push_back(job.name);
  return names;
}

TEST_P(JobQueueContract, ABatchedClaimTakesTheDueJobsSoonestFirstUpToItsLimit) {
  Enqueue("", {"a", "b", "c", "d", "e"});
  const auto a = Claim("w1", 1000, 60'000);
  const auto b = Claim("w1", 1000, 60'000);
  Must(jobs().RetryJob(a, "w1", 3000, "later"));
  Must(jobs().RetryJob(b, "w1", 2000, "sooner"));

  const auto first = Must(jobs().ClaimJobs("w2", 5000, 60'000, 3));
  EXPECT_EQ(JobNames(first), (std::vector<std::string>{"c", "d", "e"}));  // due at 0, queued first
  for (const auto& job : first) EXPECT_EQ(job.attempts, 1);
  const auto rest = Must(jobs().ClaimJobs("w2", 5000, 60'000, 10));
  EXPECT_EQ(JobNames(rest), (std::vector<std::string>{"b", "a"}));  // then by their due time
  EXPECT_EQ(rest.at(0).attempts, 2);
  EXPECT_TRUE(Must(jobs().ClaimJobs("w3", 5000, 60'000, 10)).empty());
}

TEST_P(JobQueueContract, ABatchedClaimPassesOverSupersededJobsAndStillFillsItself) {
  Enqueue("g1", {"a.py", "b.py", "c.py"});
  Enqueue("g1", {"a.py"});  // supersedes a.py's first job, which nobody will run
  Must(metadata().DeletePackage("p1", "g1", "b.py"));
  const auto claimed = Must(jobs().ClaimJobs("w1", 1000, 60'000, 2));
  EXPECT_EQ(JobNames(claimed), (std::vector<std::string>{"c.py", "a.py"}));
  EXPECT_EQ(Must(jobs().CountQueued()), 2u);  // the two dead jobs were dropped on the way
}

TEST_P(JobQueueContract, BatchedCompletionsSettleEachJobAndDiscardTheLostOnes) {
  auto ready = Package("p1", "g1", "b.py", 500);
  ready.sha256 = "shaOldB";
  Must(metadata().MergeIntoGroup(Group("p1", "g1", 500), {ready}));
  Enqueue("g1", {"a.py", "b.py", "c.py"});
  const auto claimed = Must(jobs().ClaimJobs("w1", 1000, 2000, 3));
  ASSERT_EQ(claimed.size(), 3u);
  const auto c_again = Claim("w2", 2500, 9000);  // w1's lease of every job ran out; w2 took one
  ASSERT_EQ(c_again.id, claimed[0].id);

  const auto results = Must(jobs().CompleteJobs({{claimed[2], Blob("shaC", 3), "u-c"},
                                                 {claimed[0], Blob("shaLost", 1), "u-lost"},
                                                 {claimed[1], Blob("shaB", 2), "u-b"}},
                                                "w1", 2600));
  ASSERT_EQ(results.size(), 3u);
  const std::string first = claimed[0].name, second = claimed[1].name, third = claimed[2].name;
  // Results come in the order of the completions handed in, whatever order they were applied.
  EXPECT_EQ(Must(CompletionResult(results[0])),
            std::optional<std::string>(third == "b.py" ? "shaOldB" : ""));
  EXPECT_EQ(Must(CompletionResult(results[1])), std::nullopt);  // w2 holds it now
  EXPECT_EQ(Must(CompletionResult(results[2])),
            std::optional<std::string>(second == "b.py" ? "shaOldB" : ""));
  EXPECT_EQ(Stored("g1", second).sha256, "shaB");
  EXPECT_EQ(Stored("g1", third).sha256, "shaC");
  EXPECT_EQ(Stored("g1", third).status, PackageStatus::kReady);
  EXPECT_EQ(Stored("g1", first).status, PackageStatus::kUploading);
  EXPECT_FALSE(Must(metadata().IsBlobReferenced("shaLost")));
  EXPECT_EQ(Must(jobs().CountQueued()), 1u);
}

// A completion releases the pin of its new bytes in its own transaction (BlobCheck): a live
// pin proves them kept; for one that ran out the bytes are asked for, and gone bytes leave that
// job and its package as they were while the others apply.
TEST_P(JobQueueContract, ACompletionWhoseBytesAreGoneChangesNothingAndTheOthersApply) {
  Enqueue("g1", {"a.py", "b.py"});
  const auto claimed = Must(jobs().ClaimJobs("w1", 1000, 60'000, 2));
  ASSERT_EQ(claimed.size(), 2u);
  Must(metadata().PinBlob("shaKept", "w1/2", 99'000));  // live at 1500
  Must(metadata().PinBlob("shaGone", "w1/1", 1200));    // ran out at 1500
  std::vector<std::string> asked;
  const auto exists = [&](const std::string& sha) -> Result<bool> {
    asked.push_back(sha);
    return sha != "shaGone";
  };
  const BlobCheck gone{.pins = {{"shaGone", "w1/1"}}, .now_ms = 1500, .exists = exists};
  const BlobCheck kept{.pins = {{"shaKept", "w1/2"}}, .now_ms = 1500, .exists = exists};
  const auto results = Must(jobs().CompleteJobs({{claimed[0], Blob("shaGone", 1), "u-a", gone},
                                                 {claimed[1], Blob("shaKept", 2), "u-b", kept}},
                                                "w1", 1500));
  ASSERT_EQ(results.size(), 2u);
  ASSERT_FALSE(results[0]);
  EXPECT_TRUE(results[0].error().retryable);
  EXPECT_EQ(Must(CompletionResult(results[1])), std::optional<std::string>(""));
  EXPECT_EQ(asked, std::vector<std::string>{"shaGone"});  // the live pin needed no look
  EXPECT_EQ(Stored("g1", claimed[0].name).status, PackageStatus::kUploading);
  EXPECT_EQ(Stored("g1", claimed[1].name).sha256, "shaKept");
  // The kept bytes' pin went with the completion: once unreferenced, nothing holds them.
  Must(metadata().DeletePackage("p1", "g1", claimed[1].name));
  EXPECT_TRUE(Must(metadata().ReclaimBlob("shaKept", 1600, [] { return Result<void>(); })));
  // The job whose bytes were gone is still w1's, to retry.
  Must(jobs().RetryJob(claimed[0], "w1", 1600, "bytes reclaimed"));
  EXPECT_EQ(Claim("w2", 1600, 9000).id, claimed[0].id);
}

// A worker that dies between its batched claim and its completions: its jobs are taken again,
// by a restart (single instance) or once the leases run out (shared queue), and a late
// completion of the dead worker's is discarded.
TEST_P(JobQueueContract, ACrashBetweenABatchedClaimAndItsCompletionRequeuesEveryJob) {
  Enqueue("g1", {"a.py", "b.py", "c.py"});
  const auto before = Must(jobs().ClaimJobs("w-dead", 1000, 50'000, 3));
  ASSERT_EQ(before.size(), 3u);
  store_ = {};  // the process ends; its store with it
  store_ = Must(backend_->Connect());
  Must(jobs().RecoverAfterRestart(2000));
  const std::int64_t now = GetParam().recovery_releases_leases ? 2000 : 50'000;
  if (!GetParam().recovery_releases_leases) {
    EXPECT_TRUE(Must(jobs().ClaimJobs("w-new", 2000, 60'000, 3)).empty());  // leases still run
  }
  const auto after = Must(jobs().ClaimJobs("w-new", now, now + 10'000, 3));
  ASSERT_EQ(after.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(after[i].id, before[i].id);
    EXPECT_EQ(after[i].attempts, 2);
  }
  const auto late =
      Must(jobs().CompleteJobs({{before[0], Blob("shaDead", 1), "u"}}, "w-dead", now + 1));
  EXPECT_EQ(Must(CompletionResult(late.at(0))), std::nullopt);
  EXPECT_EQ(Stored("g1", before[0].name).status, PackageStatus::kUploading);
}

// Two stores on one database, as two server instances, claiming in batches of three.
TEST_P(JobQueueContract, ConcurrentBatchedClaimsTakeEveryJobExactlyOnce) {
  constexpr int kJobs = 150;
  const test::StoreUnderTest second = Must(backend_->Connect());
  int errors = 0;
  const auto claimed = ClaimConcurrently(
      *second.jobs, kJobs,
      [](JobQueue& queue, const std::string& worker) {
        auto jobs = queue.ClaimJobs(worker, 1000, 60'000, 3);
        if (jobs) EXPECT_LE(jobs->size(), 3u);
        return jobs;
      },
      errors);
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(claimed.size(), static_cast<std::size_t>(kJobs));
  EXPECT_EQ(std::set<std::int64_t>(claimed.begin(), claimed.end()).size(),
            static_cast<std::size_t>(kJobs));
}

INSTANTIATE_TEST_SUITE_P(Backends, JobQueueContract, ::testing::ValuesIn(test::StoreBackends()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace dlipkg
