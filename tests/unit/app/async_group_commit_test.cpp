// The job runner's group commit on the real stores (a directory of blobs, a SQLite file): a
// package becomes READY only after its bytes and its name are durable, a member that fails in
// a batch fails alone, a batch is made durable while the one before it completes, and batches
// and the fetches waiting for the committer and the completer stay bounded.
// The stores are wrapped by recorders of the order of the durability steps.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "adapters/blobs/fs_blob_store.hpp"
#include "adapters/metadata/sqlite/sqlite_metadata_store.hpp"
#include "core/job_runner.hpp"
#include "core/package_service.hpp"
#include "testing/fakes.hpp"
#include "testing/settable_clock.hpp"
#include "testing/temp_dir.hpp"

namespace dlipkg {
namespace {

using namespace std::chrono_literals;

// Steps in the order they were taken: "seal <sha>", "publish <sha>", "sync <sha>" (the blob's
// name is durable), "complete <sha>" (its package was committed READY).
class StepLog {
 public:
  void Add(std::string step) {
    std::lock_guard lock(mutex_);
    steps_.push_back(std::move(step));
  }
  std::vector<std::string> Steps() const {
    std::lock_guard lock(mutex_);
    return steps_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> steps_;
};

// Waits until `done` holds, at most 10 s of real time.
template <class Predicate>
bool Eventually(Predicate done) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Records each step after the real writer took it; fails SyncPublished of the blob `poison`.
class RecordingWriter final : public BlobWriter {
 public:
  RecordingWriter(std::unique_ptr<BlobWriter> inner, StepLog& log, std::atomic<int>& begun,
                  std::string poison)
      : inner_(std::move(inner)), log_(log), begun_(begun), poison_(std::move(poison)) {}
  Result<void> Write(std::span<const char> bytes) override { return inner_->Write(bytes); }
  void ExpectSize(std::int64_t bytes) override { inner_->ExpectSize(bytes); }
  std::optional<Error> Cancelled() const override { return inner_->Cancelled(); }
  // The worker's call (its fetch is done) is the first; the committer's comes later.
  Result<void> BeginSeal() override {
    if (!begun_once_) begun_once_ = true, ++begun_;
    return inner_->BeginSeal();
  }
  Result<BlobInfo> Seal() override {
    auto sealed = inner_->Seal();
    if (sealed) sha_ = sealed->sha256, log_.Add("seal " + sha_);
    return sealed;
  }
  Result<BlobInfo> Commit() override {
    auto committed = inner_->Commit();
    if (committed) log_.Add("commit " + committed->sha256);
    return committed;
  }
  Result<BlobInfo> Publish() override {
    auto published = inner_->Publish();
    if (published) log_.Add("publish " + published->sha256);
    return published;
  }
  Result<void> SyncPublished() override {
    if (!poison_.empty() && sha_ == poison_)
      return Fail(ErrorCode::kInternal, "blob store sync failed: injected");
    auto synced = inner_->SyncPublished();
    if (synced) log_.Add("sync " + sha_);
    return synced;
  }

 private:
  std::unique_ptr<BlobWriter> inner_;
  StepLog& log_;
  std::atomic<int>& begun_;
  const std::string poison_;
  std::string sha_;
  bool begun_once_ = false;
};

class RecordingBlobStore final : public BlobStore {
 public:
  RecordingBlobStore(BlobStore& inner, StepLog& log) : inner_(inner), log_(log) {}
  Result<std::unique_ptr<BlobWriter>> Create() override {
    auto writer = inner_.Create();
    if (!writer) return writer;
    return std::unique_ptr<BlobWriter>(
        new RecordingWriter(std::move(*writer), log_, begun, poison));
  }
  Result<std::unique_ptr<BlobReader>> Open(const std::string& sha) override {
    return inner_.Open(sha);
  }
  Result<bool> Exists(const std::string& sha) override { return inner_.Exists(sha); }
  Result<void> Remove(const std::string& sha) override { return inner_.Remove(sha); }
  Result<std::vector<std::string>> List() override { return inner_.List(); }
  Result<std::size_t> SweepTemporaries(std::chrono::milliseconds min_age) override {
    return inner_.SweepTemporaries(min_age);
  }

  std::atomic<int> begun{0};  // fetches finished (their worker started the seal)
  std::string poison;

 private:
  BlobStore& inner_;
  StepLog& log_;
};

// Records each batch of completions after it committed; can hold the first one back.
class RecordingQueue final : public JobQueue {
 public:
  RecordingQueue(JobQueue& inner, StepLog& log) : inner_(inner), log_(log) {}
  Result<EnqueuedUploads> EnqueueUploads(const std::optional<GroupRecord>& group,
                                         const std::vector<PackageRecord>& packages,
                                         const std::vector<std::string>& urls,
                                         std::int64_t deadline_ms,
                                         std::size_t max_queued) override {
    return inner_.EnqueueUploads(group, packages, urls, deadline_ms, max_queued);
  }
  Result<std::vector<UploadJob>> ClaimJobs(const std::string& worker, std::int64_t now_ms,
                                           std::int64_t lease_until_ms,
                                           std::size_t max_jobs) override {
    {
      // Gated: a claim waits for AllowClaims (and then takes one job) or ReleaseClaims.
      std::unique_lock lock(mutex_);
      released_.wait_for(lock, 10s, [this] { return !gate_claims_ || claim_budget_ > 0; });
      if (gate_claims_ && claim_budget_ > 0) --claim_budget_, max_jobs = 1;
    }
    return inner_.ClaimJobs(worker, now_ms, lease_until_ms, max_jobs);
  }
  Result<bool> RenewLease(std::int64_t id, const std::string& worker,
                          std::int64_t until_ms) override {
    return inner_.RenewLease(id, worker, until_ms);
  }
  Result<void> ReportProgress(const UploadJob& job, const std::string& worker, std::int64_t bytes,
                              std::int64_t expected) override {
    return inner_.ReportProgress(job, worker, bytes, expected);
  }
  Result<std::vector<CompletionResult>> CompleteJobs(const std::vector<JobCompletion>& done,
                                                     const std::string& worker,
                                                     std::int64_t now_ms) override {
    {
      std::unique_lock lock(mutex_);
      sizes_.push_back(done.size());
      if (hold_first_ && sizes_.size() == 1)
        released_.wait_for(lock, 10s, [this] { return !hold_first_; });
    }
    auto results = inner_.CompleteJobs(done, worker, now_ms);
    if (results)
      for (const auto& c : done) log_.Add("complete " + c.blob.sha256);
    return results;
  }
  Result<void> RetryJob(const UploadJob& job, const std::string& worker, std::int64_t next_ms,
                        const std::string& reason) override {
    return inner_.RetryJob(job, worker, next_ms, reason);
  }
  Result<void> FailJob(const UploadJob& job, const std::string& worker, const std::string& reason,
                       std::int64_t now_ms) override {
    return inner_.FailJob(job, worker, reason, now_ms);
  }
  Result<std::size_t> RecoverAfterRestart(std::int64_t now_ms) override {
    return inner_.RecoverAfterRestart(now_ms);
  }
  Result<std::size_t> CountQueued() override { return inner_.CountQueued(); }

  // The first claim takes one job and the first batch waits for Release, so that the first
  // batch holds that one job alone, while every other claim waits for AllowClaims or
  // ReleaseClaims.
  void HoldFirstBatch() {
    std::lock_guard lock(mutex_);
    hold_first_ = true;
    gate_claims_ = true;
    claim_budget_ = 1;
  }
  // Lets `count` more gated claims take one job each.
  void AllowClaims(int count) {
    std::lock_guard lock(mutex_);
    claim_budget_ += count;
    released_.notify_all();
  }
  void ReleaseClaims() {
    std::lock_guard lock(mutex_);
    gate_claims_ = false;
    released_.notify_all();
  }
  void Release() {
    std::lock_guard lock(mutex_);
    hold_first_ = false;
    gate_claims_ = false;
    released_.notify_all();
  }
  std::vector<std::size_t> Sizes() {
    std::lock_guard lock(mutex_);
    return sizes_;
  }

 private:
  JobQueue& inner_;
  StepLog& log_;
  std::mutex mutex_;
  std::condition_variable released_;
  bool hold_first_ = false;
  bool gate_claims_ = false;
  int claim_budget_ = 0;
  std::vector<std::size_t> sizes_;
};

class AsyncGroupCommit : public ::testing::Test {
 protected:
  static constexpr int kWorkers = 1;

  AsyncGroupCommit() {
    for (int i = 0; i < 12; ++i) fetcher_.Serve(Url(i), "bytes of package " + std::to_string(i));
  }
  ~AsyncGroupCommit() override {
    queue_.Release();
    if (runner_) runner_->Stop();
  }
  // A runner committing at most `max_batch` together, with at most `max_handed_off` fetches
  // waiting for its committer.
  void Build(std::size_t max_batch, std::size_t max_handed_off) {
    runner_.emplace(queue_, blobs_, keeper_, fetcher_, clock_, events_, pool_,
                    JobRunnerOptions{.worker_id = "w1",
                                     .lease = 60s,
                                     .poll = 20ms,
                                     .complete_batch = max_batch,
                                     .max_handed_off = max_handed_off,
                                     .jitter = [] { return 1.0; }});
  }
  static std::string Url(int i) { return "http://src/p" + std::to_string(i) + ".py"; }
  static std::string Name(int i) { return "p" + std::to_string(i) + ".py"; }
  static std::string Sha(int i) {
    return testing::FakeBlobStore::Key("bytes of package " + std::to_string(i));
  }

  void Upload(int count) {
    std::vector<std::string> urls;
    for (int i = 0; i < count; ++i) urls.push_back(Url(i));
    UploadCommand c = testing::UploadOf(urls, PackageKind::kFile, "g", GroupMode::kMerge);
    c.is_async = true;
    auto uploaded = service_.Upload(c);
    ASSERT_TRUE(uploaded) << uploaded.error().message;
  }
  PackageStatus StatusOf(int i) {
    auto p = service_.Show(testing::PackageAt("p1", "g", Name(i)));
    EXPECT_TRUE(p) << p.error().message;
    return p ? p->status : PackageStatus::kUploading;
  }
  // With the first batch's completion held (HoldFirstBatch), lets fetches through one at a time
  // until the committer holds a durable batch that its queue for the completer has no room
  // for. Returns how many were fetched, the held one included.
  int StallCommitter() {
    int fetched = 1;
    while (!runner_->CurrentBacklog().committer_waiting) {
      if (fetched == 12) return ADD_FAILURE() << "the committer never waited", fetched;
      queue_.AllowClaims(1);
      ++fetched;
      // Fetched and taken by the committer, which either queued it or waits with it.
      if (!Eventually([&] {
            const auto b = runner_->CurrentBacklog();
            return blobs_.begun == fetched && b.completing + b.committed == std::size_t(fetched);
          }))
        return ADD_FAILURE() << "fetch " << fetched << " was not committed", fetched;
    }
    return fetched;
  }
  // Where `step` is in the log; -1 when it is not.
  static std::ptrdiff_t At(const std::vector<std::string>& steps, const std::string& step) {
    auto found = std::ranges::find(steps, step);
    return found == steps.end() ? -1 : found - steps.begin();
  }

  test::TempDir dir_;
  std::unique_ptr<FsBlobStore> fs_ = FsBlobStore::Open(dir_.path() / "data").value();
  std::unique_ptr<SqliteMetadataStore> sqlite_ =
      SqliteMetadataStore::Open(dir_.path() / "data" / "metadata.db").value();
  StepLog log_;
  RecordingBlobStore blobs_{*fs_, log_};
  RecordingQueue queue_{*sqlite_, log_};
  testing::FakeFetcher fetcher_;
  testing::SettableClock clock_;
  testing::RecordingEventSink events_;
  BlobKeeper keeper_{*sqlite_, blobs_, clock_, events_, "test", 30min, PinScope::kProcess};
  WorkerPool pool_{kWorkers};
  std::optional<JobRunner> runner_;
  PackageService service_{
      ServicePorts{*sqlite_, queue_, blobs_, fetcher_, clock_, keeper_, pool_, events_},
      ServiceOptions{.max_queued_jobs = 100, .job_deadline_ms = 1'000'000, .on_enqueued = [this] {
                       if (runner_) runner_->Notify();
                     }}};
};

// Each package's file is synced, published and its directory synced before the transaction
// that makes it READY; batches share that transaction and stay within their bound.
TEST_F(AsyncGroupCommit, APackageIsReadyOnlyAfterItsBytesAndNameAreDurable) {
  Build(4, 3);
  Upload(12);
  runner_->Start();
  ASSERT_TRUE(events_.WaitFor(EventKind::kJobReady, 12));
  const auto steps = log_.Steps();
  for (int i = 0; i < 12; ++i) {
    SCOPED_TRACE(Name(i));
    const auto seal = At(steps, "seal " + Sha(i)), publish = At(steps, "publish " + Sha(i)),
               sync = At(steps, "sync " + Sha(i)), complete = At(steps, "complete " + Sha(i));
    ASSERT_GE(seal, 0);
    EXPECT_LT(seal, publish);
    EXPECT_LT(publish, sync);
    EXPECT_LT(sync, complete);
    EXPECT_EQ(StatusOf(i), PackageStatus::kReady);
    EXPECT_EQ(testing::ContentOf(service_, "p1", "g", Name(i)),
              "bytes of package " + std::to_string(i));
  }
  const auto sizes = queue_.Sizes();
  std::size_t total = 0;
  for (auto size : sizes) {
    EXPECT_LE(size, 4u);
    total += size;
  }
  EXPECT_EQ(total, 12u);
  EXPECT_EQ(*queue_.CountQueued(), 0u);
}

// While the first batch's transaction is held back, the committer makes the next fetches
// durable until its queue for the completer is full; the rest pile up into a later batch, one
// of which fails to make its name durable: it alone fails, the rest become READY.
TEST_F(AsyncGroupCommit, AMemberThatFailsInABatchFailsAlone) {
  Build(16, 16);
  blobs_.poison = Sha(11);
  queue_.HoldFirstBatch();
  Upload(12);
  runner_->Start();
  ASSERT_TRUE(Eventually([&] { return !queue_.Sizes().empty(); }));
  ASSERT_EQ(queue_.Sizes().front(), 1u);
  const int durable = StallCommitter();
  // Every other fetch is done and waits for the committer: they make the next batch.
  queue_.ReleaseClaims();
  const std::size_t last_batch = 12 - durable;
  ASSERT_GE(last_batch, 2u) << "the failing package has no batch mate";
  ASSERT_TRUE(Eventually([&] { return runner_->CurrentBacklog().handed_off == last_batch; }));
  queue_.Release();
  ASSERT_TRUE(events_.WaitFor(EventKind::kJobReady, 11));
  ASSERT_TRUE(events_.WaitFor(EventKind::kJobFailed, 1));
  EXPECT_EQ(StatusOf(11), PackageStatus::kFailed);
  for (int i = 0; i < 11; ++i) EXPECT_EQ(StatusOf(i), PackageStatus::kReady) << Name(i);
  // The fetches handed in last (the failing one among them) make the last batch.
  EXPECT_EQ(queue_.Sizes().back(), last_batch - 1);
  // Its batch mates were published and synced with it, then committed without it.
  const auto steps = log_.Steps();
  EXPECT_GE(At(steps, "publish " + Sha(11)), 0);
  EXPECT_EQ(At(steps, "sync " + Sha(11)), -1);
  EXPECT_EQ(At(steps, "complete " + Sha(11)), -1);
}

// The completer is held in its first transaction: the committer makes batches durable until
// max_committed_batches wait for the completer and it holds one more; workers hand their
// fetches in until max_handed_off wait, then each waits with its own fetch done, and no more
// is fetched.
TEST_F(AsyncGroupCommit, FetchesWaitingForTheCommitterAreBounded) {
  Build(4, 3);
  queue_.HoldFirstBatch();
  Upload(12);
  runner_->Start();
  ASSERT_TRUE(Eventually([&] { return !queue_.Sizes().empty(); }));
  ASSERT_EQ(queue_.Sizes().front(), 1u);
  ASSERT_LE(StallCommitter(), 12 - 4) << "too few left to fill the committer's queue";
  queue_.ReleaseClaims();
  ASSERT_TRUE(Eventually([&] {
    const auto b = runner_->CurrentBacklog();
    return b.waiting_for_room == 1 && b.handed_off == 3;
  }));
  const auto backlog = runner_->CurrentBacklog();
  EXPECT_EQ(backlog.completing, 1u);
  // One batch queued for the completer (max_committed_batches) and the committer's own.
  EXPECT_GE(backlog.committed, 2u);
  EXPECT_LE(backlog.committed, 2u * 4u);
  // Every fetch done is accounted for, and none more was started.
  EXPECT_EQ(blobs_.begun, static_cast<int>(backlog.completing + backlog.committed + 3 + 1));
  queue_.Release();
  ASSERT_TRUE(events_.WaitFor(EventKind::kJobReady, 12));
  for (auto size : queue_.Sizes()) EXPECT_LE(size, 4u);
}

// While the completer holds the first batch's transaction, the committer goes on making the
// next fetches durable: the disk's waits for one batch overlap the other's transaction.
TEST_F(AsyncGroupCommit, ABatchIsMadeDurableWhileThePreviousOneCompletes) {
  Build(4, 8);
  queue_.HoldFirstBatch();
  Upload(3);
  runner_->Start();
  ASSERT_TRUE(Eventually([&] { return !queue_.Sizes().empty(); }));
  queue_.ReleaseClaims();
  // p0's completion is held; p1's and p2's bytes and names become durable meanwhile.
  ASSERT_TRUE(Eventually([&] {
    const auto steps = log_.Steps();
    return At(steps, "sync " + Sha(1)) >= 0 && At(steps, "sync " + Sha(2)) >= 0;
  }));
  EXPECT_EQ(queue_.Sizes().size(), 1u);
  EXPECT_EQ(StatusOf(0), PackageStatus::kUploading);
  EXPECT_EQ(StatusOf(1), PackageStatus::kUploading);
  queue_.Release();
  ASSERT_TRUE(events_.WaitFor(EventKind::kJobReady, 3));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(StatusOf(i), PackageStatus::kReady) << Name(i);
  // Completed in the order they were made durable.
  const auto steps = log_.Steps();
  EXPECT_LT(At(steps, "complete " + Sha(0)), At(steps, "complete " + Sha(1)));
  EXPECT_LT(At(steps, "complete " + Sha(1)), At(steps, "complete " + Sha(2)));
}

}  // namespace
}  // namespace dlipkg
