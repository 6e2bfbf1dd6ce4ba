#include "core/job_runner.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "core/package_service.hpp"
#include "unit/core/fakes.hpp"

namespace dlipkg {
namespace {

using namespace std::chrono_literals;

class JobRunnerTest : public ::testing::Test {
 protected:
  JobRunnerTest() {
    fetcher_.Serve(Url("a.py"), "bytes of a");
    fetcher_.Serve(Url("b.py"), "bytes of b");
  }
  ~JobRunnerTest() override { runner_.Stop(); }
  static std::string Url(const std::string& name) { return "http://src/" + name; }

  UploadCommand Async(std::vector<std::string> names, std::optional<std::string> group = "g") {
    std::vector<std::string> urls;
    for (auto& n : names) urls.push_back(Url(n));
    UploadCommand c = testing::UploadOf(urls, PackageKind::kFile, group, GroupMode::kMerge);
    c.is_async = true;
    return c;
  }
  // Waits (bounded) until the package leaves UPLOADING.
  PackageRecord Settled(const std::string& group, const std::string& name) {
    for (int i = 0; i < 500; ++i) {
      auto p = service_.Show(testing::PackageAt("p1", group, name));
      if (p && p->status != PackageStatus::kUploading) return *p;
      std::this_thread::sleep_for(10ms);
    }
    ADD_FAILURE() << name << " still UPLOADING after 5 s";
    return {};
  }
  std::string Content(const std::string& group, const std::string& name) {
    return testing::ContentOf(service_, "p1", group, name);
  }

  testing::FakeMetadataStore metadata_;
  testing::FakeJobQueue jobs_{metadata_};
  testing::FakeBlobStore blobs_;
  testing::FakeFetcher fetcher_;
  testing::FakeClock clock_;
  BlobKeeper keeper_{metadata_, blobs_, clock_, "test"};
  WorkerPool pool_{2};
  JobRunner runner_{
      jobs_,
      blobs_,
      keeper_,
      fetcher_,
      clock_,
      pool_,
      JobRunnerOptions{
          .worker_id = "w1", .lease = 10s, .poll = 5ms, .retry_base = 1ms, .retry_cap = 2ms}};
  PackageService service_{ServicePorts{metadata_, jobs_, blobs_, fetcher_, clock_, keeper_, pool_},
                          ServiceOptions{.max_queued_jobs = 3,
                                         .job_deadline_ms = 1'000'000,
                                         .on_enqueued = [this] { runner_.Notify(); }}};
};

TEST_F(JobRunnerTest, AsyncUploadAnswersUploadingThenBecomesReady) {
  auto result = service_.Upload(Async({"a.py", "b.py"}));
  ASSERT_TRUE(result) << result.error().message;
  ASSERT_EQ(result->packages.size(), 2u);
  EXPECT_EQ(result->packages[0].status, PackageStatus::kUploading);
  EXPECT_TRUE(result->packages[0].is_async);
  EXPECT_EQ(RollUpStatus(result->group->packages), PackageStatus::kUploading);
  EXPECT_EQ(fetcher_.calls, 0);  // nothing fetched before the answer
  runner_.Start();
  EXPECT_EQ(Settled("g", "a.py").status, PackageStatus::kReady);
  EXPECT_EQ(Settled("g", "b.py").status, PackageStatus::kReady);
  EXPECT_EQ(Content("g", "b.py"), "bytes of b");
  EXPECT_EQ(*jobs_.CountQueued(), 0u);
}

TEST_F(JobRunnerTest, RetryableFailuresAreRetriedThenSucceed) {
  fetcher_.Fail(Url("a.py"), Error{ErrorCode::kSourceUnavailable, "HTTP 503", true}, 2);
  ASSERT_TRUE(service_.Upload(Async({"a.py"})));
  runner_.Start();
  EXPECT_EQ(Settled("g", "a.py").status, PackageStatus::kReady);
  EXPECT_EQ(jobs_.retries.size(), 2u);
  EXPECT_EQ(fetcher_.calls, 3);
}

TEST_F(JobRunnerTest, PermanentFailureFailsAtOnceWithTheReason) {
  fetcher_.Fail(Url("a.py"), Error{ErrorCode::kSourceUnavailable, "a.py: not found (HTTP 404)"});
  ASSERT_TRUE(service_.Upload(Async({"a.py"}, std::nullopt)));
  runner_.Start();
  const auto p = Settled("", "a.py");
  EXPECT_EQ(p.status, PackageStatus::kFailed);
  EXPECT_EQ(p.status_reason, "a.py: not found (HTTP 404)");
  EXPECT_EQ(fetcher_.calls, 1);
  EXPECT_TRUE(jobs_.retries.empty());
}

TEST_F(JobRunnerTest, RetryableFailuresStopAtTheDeadline) {
  fetcher_.Fail(Url("a.py"), Error{ErrorCode::kSourceUnavailable, "timed out", true});
  // The fake clock moves 1 ms per reading: a 60 ms deadline allows a few attempts.
  PackageService short_deadline{
      ServicePorts{metadata_, jobs_, blobs_, fetcher_, clock_, keeper_, pool_},
      ServiceOptions{.max_queued_jobs = 3, .job_deadline_ms = 60, .on_enqueued = [this] {
                       runner_.Notify();
                     }}};
  ASSERT_TRUE(short_deadline.Upload(Async({"a.py"})));
  runner_.Start();
  const auto p = Settled("g", "a.py");
  EXPECT_EQ(p.status, PackageStatus::kFailed);
  EXPECT_NE(p.status_reason.find("timed out"), std::string::npos) << p.status_reason;
  EXPECT_NE(p.status_reason.find("deadline"), std::string::npos) << p.status_reason;
  EXPECT_GT(fetcher_.calls, 1);
}

TEST_F(JobRunnerTest, FailedReplacementKeepsThePreviousBytesDownloadable) {
  ASSERT_TRUE(service_.Upload(Async({"a.py"})));
  runner_.Start();
  ASSERT_EQ(Settled("g", "a.py").status, PackageStatus::kReady);
  runner_.Stop();
  fetcher_.Fail(Url("a.py"), Error{ErrorCode::kSourceUnavailable, "HTTP 403"});
  auto again = service_.Upload(Async({"a.py"}));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->packages[0].status, PackageStatus::kUploading);
  EXPECT_EQ(Content("g", "a.py"), "bytes of a");  // old bytes while the new ones upload
  JobRunner second{jobs_,
                   blobs_,
                   keeper_,
                   fetcher_,
                   clock_,
                   pool_,
                   JobRunnerOptions{.worker_id = "w2", .poll = 5ms}};
  second.Start();
  EXPECT_EQ(Settled("g", "a.py").status, PackageStatus::kFailed);
  second.Stop();
  EXPECT_EQ(Content("g", "a.py"), "bytes of a");
}

TEST_F(JobRunnerTest, QueueBoundRefusesWithNothingCreated) {
  auto refused = service_.Upload(Async({"a.py", "b.py", "c.py", "d.py"}));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kQuotaExceeded);
  EXPECT_FALSE(*metadata_.GetGroup("p1", "g"));
  EXPECT_EQ(*jobs_.CountQueued(), 0u);
}

TEST_F(JobRunnerTest, TypedReplaceCannotBeAsync) {
  auto command = Async({"a.py"});
  command.mode = GroupMode::kReplace;
  EXPECT_EQ(service_.Upload(command).error().code, ErrorCode::kNotSupported);
}

}  // namespace
}  // namespace dlipkg
