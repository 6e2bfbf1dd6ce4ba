#include "core/completion_batcher.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "testing/fakes.hpp"

namespace dlipkg {
namespace {

using namespace std::chrono_literals;

// Forwards to a FakeJobQueue; the first CompleteJobs call waits until the test opens the
// gate, so that later completions pile up behind a running commit. Records each call's size.
class GatedQueue final : public JobQueue {
 public:
  explicit GatedQueue(JobQueue& inner) : inner_(inner) {}
  Result<EnqueuedUploads> EnqueueUploads(const std::optional<GroupRecord>& group,
                                         const std::vector<PackageRecord>& packages,
                                         const std::vector<std::string>& urls,
                                         std::int64_t deadline_ms,
                                         std::size_t max_queued) override {
    return inner_.EnqueueUploads(group, packages, urls, deadline_ms, max_queued);
  }
  Result<std::vector<UploadJob>> ClaimJobs(const std::string& worker, std::int64_t now,
                                           std::int64_t until, std::size_t max_jobs) override {
    return inner_.ClaimJobs(worker, now, until, max_jobs);
  }
  Result<bool> RenewLease(std::int64_t id, const std::string& worker, std::int64_t until) override {
    return inner_.RenewLease(id, worker, until);
  }
  Result<void> ReportProgress(const UploadJob& job, const std::string& worker, std::int64_t bytes,
                              std::int64_t expected) override {
    return inner_.ReportProgress(job, worker, bytes, expected);
  }
  Result<std::vector<CompletionResult>> CompleteJobs(const std::vector<JobCompletion>& done,
                                                     const std::string& worker,
                                                     std::int64_t now) override {
    {
      std::unique_lock lock(mutex_);
      sizes_.push_back(done.size());
      entered_.notify_all();
      if (sizes_.size() == 1) opened_.wait_for(lock, 10s, [&] { return open_; });
    }
    return inner_.CompleteJobs(done, worker, now);
  }
  Result<void> RetryJob(const UploadJob& job, const std::string& worker, std::int64_t next,
                        const std::string& reason) override {
    return inner_.RetryJob(job, worker, next, reason);
  }
  Result<void> FailJob(const UploadJob& job, const std::string& worker, const std::string& reason,
                       std::int64_t now) override {
    return inner_.FailJob(job, worker, reason, now);
  }
  Result<std::size_t> RecoverAfterRestart(std::int64_t now) override {
    return inner_.RecoverAfterRestart(now);
  }
  Result<std::size_t> CountQueued() override { return inner_.CountQueued(); }

  bool WaitEntered() {
    std::unique_lock lock(mutex_);
    return entered_.wait_for(lock, 10s, [&] { return !sizes_.empty(); });
  }
  void Open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    opened_.notify_all();
  }
  std::vector<std::size_t> Sizes() {
    std::lock_guard lock(mutex_);
    return sizes_;
  }

 private:
  JobQueue& inner_;
  std::mutex mutex_;
  std::condition_variable entered_, opened_;
  bool open_ = false;
  std::vector<std::size_t> sizes_;
};

class CompletionBatcherTest : public ::testing::Test {
 protected:
  // Queues and claims `n` jobs for worker w1.
  std::vector<UploadJob> Claimed(int n) {
    std::vector<PackageRecord> packages;
    std::vector<std::string> urls;
    for (int i = 0; i < n; ++i) {
      packages.push_back(PackageRecord{.project = "p1", .name = "f" + std::to_string(i)});
      urls.push_back("http://src/f" + std::to_string(i));
    }
    EXPECT_TRUE(jobs_.EnqueueUploads(std::nullopt, packages, urls, 1'000'000, 100));
    return *jobs_.ClaimJobs("w1", 0, 60'000, static_cast<std::size_t>(n));
  }
  static JobCompletion Done(const UploadJob& job) {
    return JobCompletion{job, BlobInfo{"sha-" + job.name, 1}, "u-" + job.name};
  }
  // Each completion on a thread of its own; the first enters the store and waits at the gate
  // until `piled` others wait behind it.
  std::vector<CompletionResult> CompleteAll(CompletionBatcher& batcher,
                                            const std::vector<UploadJob>& jobs) {
    std::vector<CompletionResult> results(jobs.size(), std::optional<std::string>());
    std::vector<std::thread> threads;
    threads.emplace_back([&] { results[0] = batcher.Complete(Done(jobs[0])); });
    EXPECT_TRUE(gated_.WaitEntered());
    for (std::size_t i = 1; i < jobs.size(); ++i)
      threads.emplace_back([&, i] { results[i] = batcher.Complete(Done(jobs[i])); });
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (batcher.Waiting() < jobs.size() - 1 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::yield();
    EXPECT_EQ(batcher.Waiting(), jobs.size() - 1);
    gated_.Open();
    for (auto& t : threads) t.join();
    return results;
  }

  testing::FakeMetadataStore metadata_;
  testing::FakeJobQueue jobs_{metadata_};
  GatedQueue gated_{jobs_};
  testing::SettableClock clock_;
};

TEST_F(CompletionBatcherTest, CompletionsArrivingDuringACommitShareTheNextOne) {
  const auto jobs = Claimed(4);
  CompletionBatcher batcher(gated_, "w1", clock_, 16);
  const auto results = CompleteAll(batcher, jobs);
  EXPECT_EQ(gated_.Sizes(), (std::vector<std::size_t>{1, 3}));
  for (const auto& result : results) {
    ASSERT_TRUE(result) << result.error().message;
    EXPECT_EQ(*result, std::optional<std::string>(""));
  }
  for (const auto& job : jobs)
    EXPECT_EQ((*metadata_.GetPackage("p1", "", job.name))->status, PackageStatus::kReady);
}

TEST_F(CompletionBatcherTest, ABatchHoldsAtMostItsLimitOldestFirst) {
  const auto jobs = Claimed(4);
  CompletionBatcher batcher(gated_, "w1", clock_, 2);
  const auto results = CompleteAll(batcher, jobs);
  EXPECT_EQ(gated_.Sizes(), (std::vector<std::size_t>{1, 2, 1}));
  for (const auto& result : results) EXPECT_TRUE(result);
  EXPECT_EQ(*jobs_.CountQueued(), 0u);
}

TEST_F(CompletionBatcherTest, ALoneCompletionIsCommittedAtOnceWithItsOwnResult) {
  const auto jobs = Claimed(1);
  gated_.Open();
  CompletionBatcher batcher(gated_, "w-other", clock_, 16);  // w1 holds the lease
  const auto result = batcher.Complete(Done(jobs[0]));
  ASSERT_TRUE(result);
  EXPECT_EQ(*result, std::nullopt);  // discarded: the lease is not this worker's
  EXPECT_EQ(gated_.Sizes(), (std::vector<std::size_t>{1}));
  EXPECT_EQ(batcher.Waiting(), 0u);
}

}  // namespace
}  // namespace dlipkg
