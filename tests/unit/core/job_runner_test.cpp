#include "core/job_runner.hpp"

#include <gtest/gtest.h>

#include <chrono>

#include "core/package_service.hpp"
#include "testing/fail_nth.hpp"
#include "testing/fakes.hpp"

namespace dlipkg {
namespace {

using namespace std::chrono_literals;

// The runner's time is the settable clock's: it stands still unless a test moves it, and the
// tests wait for the runner's events (bounded) instead of polling with sleeps. The jitter is
// fixed at the whole ceiling, so every retry delay is known: 100, 200, 400, 800 ms.
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
  PackageRecord Show(const std::string& group, const std::string& name) {
    auto p = service_.Show(testing::PackageAt("p1", group, name));
    EXPECT_TRUE(p) << p.error().message;
    return p ? *p : PackageRecord{};
  }
  std::string Content(const std::string& group, const std::string& name) {
    return testing::ContentOf(service_, "p1", group, name);
  }
  // Waits for the n-th retry to be reported, then moves the clock past its delay.
  void StepPastRetry(std::size_t n) {
    ASSERT_TRUE(events_.WaitFor(EventKind::kJobRetrying, n)) << "no retry number " << n;
    clock_.Advance(std::chrono::milliseconds(events_.Of(EventKind::kJobRetrying)[n - 1].delay_ms));
  }

  testing::FakeMetadataStore metadata_;
  testing::FakeJobQueue jobs_{metadata_};
  testing::FakeBlobStore blobs_;
  testing::FakeFetcher fetcher_;
  testing::SettableClock clock_;
  testing::RecordingEventSink events_;
  BlobKeeper keeper_{metadata_, blobs_, clock_, events_, "test"};
  WorkerPool pool_{2};
  JobRunner runner_{jobs_,
                    blobs_,
                    keeper_,
                    fetcher_,
                    clock_,
                    events_,
                    pool_,
                    JobRunnerOptions{.worker_id = "w1",
                                     .lease = 10s,
                                     .poll = 50ms,
                                     .retry_base = 100ms,
                                     .retry_cap = 800ms,
                                     .jitter = [] { return 1.0; }}};
  PackageService service_{
      ServicePorts{metadata_, jobs_, blobs_, fetcher_, clock_, keeper_, pool_, events_},
      ServiceOptions{.max_queued_jobs = 3, .job_deadline_ms = 1'000'000, .on_enqueued = [this] {
                       runner_.Notify();
                     }}};
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
  ASSERT_TRUE(events_.WaitFor(EventKind::kJobReady, 2));
  EXPECT_EQ(Show("g", "a.py").status, PackageStatus::kReady);
  EXPECT_EQ(Show("g", "b.py").status, PackageStatus::kReady);
  EXPECT_EQ(Content("g", "b.py"), "bytes of b");
  EXPECT_EQ(*jobs_.CountQueued(), 0u);
}

// The jobs due when workers are idle are claimed in one transaction, not one each.
TEST_F(JobRunnerTest, JobsDueForIdleWorkersAreClaimedTogether) {
  ASSERT_TRUE(service_.Upload(Async({"a.py", "b.py"})));
  runner_.Start();
  ASSERT_TRUE(events_.WaitFor(EventKind::kJobReady, 2));
  EXPECT_EQ(jobs_.claimed_sizes, (std::vector<std::size_t>{2}));  // both workers were idle
  EXPECT_EQ(metadata_.PinCount(), 0u);  // each completion released its pin itself
}

TEST_F(JobRunnerTest, AReadyJobReportsQueuedStartedAndReady) {
  ASSERT_TRUE(service_.Upload(Async({"a.py"})));
  runner_.Start();
  ASSERT_TRUE(events_.WaitFor(EventKind::kJobReady));
  const auto events = events_.Events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].kind, EventKind::kJobQueued);
  EXPECT_EQ(events[1].kind, EventKind::kJobStarted);
  EXPECT_EQ(events[1].attempt, 1);
  const Event& ready = events[2];
  EXPECT_EQ(ready.kind, EventKind::kJobReady);
  EXPECT_NE(ready.job_id, 0);
  EXPECT_EQ(ready.job_id, events[1].job_id);
  EXPECT_EQ(ready.project, "p1");
  EXPECT_EQ(ready.group, "g");
  EXPECT_EQ(ready.name, "a.py");
  EXPECT_EQ(ready.bytes, 10);       // "bytes of a"
  EXPECT_EQ(ready.duration_ms, 0);  // the clock stood still
  EXPECT_EQ(ready.sha256, Show("g", "a.py").sha256);
  for (const Event& e : events) EXPECT_EQ(e.name, "a.py");
}

TEST_F(JobRunnerTest, RetryableFailuresAreRetriedThenSucceed) {
  fetcher_.Fail(Url("a.py"), Error{ErrorCode::kSourceUnavailable, "HTTP 503", true}, 2);
  ASSERT_TRUE(service_.Upload(Async({"a.py"})));
  runner_.Start();
  StepPastRetry(1);
  StepPastRetry(2);
  ASSERT_TRUE(events_.WaitFor(EventKind::kJobReady));
  EXPECT_EQ(Show("g", "a.py").status, PackageStatus::kReady);
  EXPECT_EQ(jobs_.retries.size(), 2u);
  EXPECT_EQ(fetcher_.calls, 3);
  const auto retries = events_.Of(EventKind::kJobRetrying);
  ASSERT_EQ(retries.size(), 2u);
  EXPECT_EQ(retries[0].delay_ms, 100);
  EXPECT_EQ(retries[1].delay_ms, 200);
}

TEST_F(JobRunnerTest, ARetryWaitsForItsDelay) {
  fetcher_.Fail(Url("a.py"), Error{ErrorCode::kSourceUnavailable, "HTTP 503", true}, 1);
  ASSERT_TRUE(service_.Upload(Async({"a.py"})));
  runner_.Start();
  ASSERT_TRUE(events_.WaitFor(EventKind::kJobRetrying));
  // Just short of the delay the runner polls (the clock passed its poll period) but the job is
  // not due: no second attempt.
  clock_.Advance(99ms);
  ASSERT_TRUE(jobs_.WaitForClaimAt(clock_.NowMs()));
  EXPECT_EQ(events_.Of(EventKind::kJobStarted).size(), 1u);
  EXPECT_EQ(fetcher_.calls, 1);
  clock_.Advance(50ms);  // one poll period later the job is due
  ASSERT_TRUE(events_.WaitFor(EventKind::kJobReady));
  EXPECT_EQ(fetcher_.calls, 2);
}

TEST_F(JobRunnerTest, PermanentFailureFailsAtOnceWithTheReason) {
  fetcher_.Fail(Url("a.py"), Error{ErrorCode::kSourceUnavailable, "a.py: not found (HTTP 404)"});
  ASSERT_TRUE(service_.Upload(Async({"a.py"}, std::nullopt)));
  runner_.Start();
  ASSERT_TRUE(events_.WaitFor(EventKind::kJobFailed));
  const auto p = Show("", "a.py");
  EXPECT_EQ(p.status, PackageStatus::kFailed);
  EXPECT_EQ(p.status_reason, "a.py: not found (HTTP 404)");
  EXPECT_EQ(fetcher_.calls, 1);
  EXPECT_TRUE(jobs_.retries.empty());
  EXPECT_EQ(events_.Of(EventKind::kJobFailed)[0].cause, "a.py: not found (HTTP 404)");
  EXPECT_EQ(events_.Of(EventKind::kJobFailed)[0].group, "");
}

// Deadline 1000 ms after queueing; attempts at 0, 100, 300 and 700 ms; the fourth retry would
// be due at 1500 ms, past the deadline, so the fourth failure fails the package. Exactly four
// attempts, however often the runner reads the clock.
TEST_F(JobRunnerTest, RetryableFailuresStopAtTheDeadline) {
  fetcher_.Fail(Url("a.py"), Error{ErrorCode::kSourceUnavailable, "timed out", true});
  PackageService short_deadline{
      ServicePorts{metadata_, jobs_, blobs_, fetcher_, clock_, keeper_, pool_, events_},
      ServiceOptions{.max_queued_jobs = 3, .job_deadline_ms = 1000, .on_enqueued = [this] {
                       runner_.Notify();
                     }}};
  ASSERT_TRUE(short_deadline.Upload(Async({"a.py"})));
  runner_.Start();
  for (std::size_t n = 1; n <= 3; ++n) StepPastRetry(n);
  ASSERT_TRUE(events_.WaitFor(EventKind::kJobFailed));
  const auto p = Show("g", "a.py");
  EXPECT_EQ(p.status, PackageStatus::kFailed);
  EXPECT_NE(p.status_reason.find("timed out"), std::string::npos) << p.status_reason;
  EXPECT_NE(p.status_reason.find("gave up after 4 attempts"), std::string::npos) << p.status_reason;
  EXPECT_EQ(fetcher_.calls, 4);
  EXPECT_EQ(clock_.MonotonicMs(), 700);
}

TEST_F(JobRunnerTest, ARetriedThenFailedJobReportsEachStep) {
  fetcher_.Fail(Url("a.py"), Error{ErrorCode::kSourceUnavailable, "HTTP 503", true}, 1);
  ASSERT_TRUE(service_.Upload(Async({"a.py"})));
  runner_.Start();
  ASSERT_TRUE(events_.WaitFor(EventKind::kJobRetrying));
  fetcher_.Fail(Url("a.py"), Error{ErrorCode::kSourceUnavailable, "HTTP 403"});
  clock_.Advance(100ms);
  ASSERT_TRUE(events_.WaitFor(EventKind::kJobFailed));
  std::vector<EventKind> kinds;
  for (const Event& e : events_.Events()) kinds.push_back(e.kind);
  EXPECT_EQ(kinds,
            (std::vector{EventKind::kJobQueued, EventKind::kJobStarted, EventKind::kJobRetrying,
                         EventKind::kJobStarted, EventKind::kJobFailed}));
  const Event retry = events_.Of(EventKind::kJobRetrying)[0];
  EXPECT_EQ(retry.attempt, 1);
  EXPECT_EQ(retry.delay_ms, 100);
  EXPECT_EQ(retry.cause, "HTTP 503");
  const Event failed = events_.Of(EventKind::kJobFailed)[0];
  EXPECT_EQ(failed.attempt, 2);
  EXPECT_EQ(failed.cause, "HTTP 403");
  EXPECT_EQ(failed.job_id, retry.job_id);
  EXPECT_EQ(failed.project, "p1");
  EXPECT_EQ(failed.group, "g");
  EXPECT_EQ(failed.name, "a.py");
}

TEST_F(JobRunnerTest, FailedReplacementKeepsThePreviousBytesDownloadable) {
  ASSERT_TRUE(service_.Upload(Async({"a.py"})));
  runner_.Start();
  ASSERT_TRUE(events_.WaitFor(EventKind::kJobReady));
  runner_.Stop();
  fetcher_.Fail(Url("a.py"), Error{ErrorCode::kSourceUnavailable, "HTTP 403"});
  auto again = service_.Upload(Async({"a.py"}));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->packages[0].status, PackageStatus::kUploading);
  EXPECT_EQ(Content("g", "a.py"), "bytes of a");  // old bytes while the new ones upload
  JobRunner second{jobs_,  blobs_,  keeper_, fetcher_,
                   clock_, events_, pool_,   JobRunnerOptions{.worker_id = "w2", .poll = 5ms}};
  second.Start();
  ASSERT_TRUE(events_.WaitFor(EventKind::kJobFailed));
  second.Stop();
  EXPECT_EQ(Show("g", "a.py").status, PackageStatus::kFailed);
  EXPECT_EQ(Content("g", "a.py"), "bytes of a");
}

// A stop in the middle of a fetch makes the job due again at once, without counting as a
// failure: the typed shutdown error, not a message, tells the runner.
TEST_F(JobRunnerTest, StopInTheMiddleOfAFetchRequeuesTheJob) {
  fetcher_.StreamUntilRefused(Url("a.py"));
  ASSERT_TRUE(service_.Upload(Async({"a.py"})));
  runner_.Start();
  ASSERT_TRUE(events_.WaitFor(EventKind::kJobStarted));
  runner_.Stop();  // returns once the fetch in flight gave up
  const auto retries = events_.Of(EventKind::kJobRetrying);
  ASSERT_EQ(retries.size(), 1u);
  EXPECT_EQ(retries[0].delay_ms, 0);
  EXPECT_EQ(retries[0].cause, "the server is shutting down");
  EXPECT_TRUE(events_.Of(EventKind::kJobFailed).empty());
  EXPECT_EQ(*jobs_.CountQueued(), 1u);
  EXPECT_EQ(Show("g", "a.py").status, PackageStatus::kUploading);
}

// A FailJob that the queue refuses is reported, not dropped; the job stays leased and is taken
// again once its lease runs out.
TEST_F(JobRunnerTest, AFailedFailJobIsReported) {
  testing::FailNth fail(1, Error{ErrorCode::kInternal, "queue down"}, "FailJob");
  testing::FailNthJobQueue failing(jobs_, fail);
  JobRunner runner{failing, blobs_,  keeper_, fetcher_,
                   clock_,  events_, pool_,   JobRunnerOptions{.worker_id = "w4", .poll = 50ms}};
  fetcher_.Fail(Url("a.py"), Error{ErrorCode::kSourceUnavailable, "HTTP 403"});
  ASSERT_TRUE(service_.Upload(Async({"a.py"})));
  runner.Start();
  ASSERT_TRUE(events_.WaitFor(EventKind::kStoreError));
  runner.Stop();
  const Event error = events_.Of(EventKind::kStoreError)[0];
  EXPECT_EQ(error.operation, "fail job");
  EXPECT_EQ(error.cause, "queue down");
  EXPECT_EQ(error.name, "a.py");
  EXPECT_TRUE(events_.Of(EventKind::kJobFailed).empty());
  EXPECT_EQ(Show("g", "a.py").status, PackageStatus::kUploading);
}

TEST_F(JobRunnerTest, QueueBoundRefusesWithNothingCreated) {
  auto refused = service_.Upload(Async({"a.py", "b.py", "c.py", "d.py"}));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kQuotaExceeded);
  EXPECT_FALSE(*metadata_.GetGroup("p1", "g"));
  EXPECT_EQ(*jobs_.CountQueued(), 0u);
  EXPECT_TRUE(events_.Events().empty());
}

TEST_F(JobRunnerTest, TypedReplaceCannotBeAsync) {
  auto command = Async({"a.py"});
  command.mode = GroupMode::kReplace;
  EXPECT_EQ(service_.Upload(command).error().code, ErrorCode::kNotSupported);
}

}  // namespace
}  // namespace dlipkg
