#include "core/job_runner.hpp"

#include <algorithm>

namespace dlipkg {
namespace {

// Progress is written to the job row at most this often, and first after this long, so a fast
// fetch (most are) costs no write at all while a slow one still shows movement.
constexpr std::int64_t kProgressIntervalMs = 1000;

// A fetch at least this large is synced by its own worker, so that its fsync holds up no batch
// of small ones at the committer; a smaller one is only started on its way to the disk there.
constexpr std::int64_t kSealInWorkerBytes = 1 << 20;

// Streams into the blob writer; refuses further bytes once the runner stops, which makes the
// fetcher abort the transfer. Reports progress (bytes so far, announced size) now and then.
class JobSink final : public ByteSink {
 public:
  using Progress = std::function<void(std::int64_t bytes, std::int64_t expected)>;
  JobSink(BlobWriter& writer, const std::atomic<bool>& stop, const Clock& clock,
          std::function<void()> after_first, Progress progress)
      : writer_(writer),
        stop_(stop),
        clock_(clock),
        after_first_(std::move(after_first)),
        progress_(std::move(progress)),
        last_report_ms_(clock.NowMs()) {}
  void ExpectSize(std::int64_t bytes) override { expected_ = bytes; }
  Result<void> Write(std::span<const char> bytes) override {
    if (stop_) return Fail(ErrorCode::kShuttingDown, "the server is shutting down", true);
    auto written = writer_.Write(bytes);
    if (after_first_) std::exchange(after_first_, nullptr)();
    if (!written) return written;
    fetched_ += static_cast<std::int64_t>(bytes.size());
    if (clock_.NowMs() - last_report_ms_ >= kProgressIntervalMs) Report();
    return written;
  }
  // Reaches a fetch whose source sends nothing, so Stop does not wait for its timeouts.
  std::optional<Error> Cancelled() const override {
    if (stop_) return Error{ErrorCode::kShuttingDown, "the server is shutting down", true};
    return std::nullopt;
  }

 private:
  void Report() {
    last_report_ms_ = clock_.NowMs();
    progress_(fetched_, expected_);
  }

  BlobWriter& writer_;
  const std::atomic<bool>& stop_;
  const Clock& clock_;
  std::function<void()> after_first_;
  Progress progress_;
  std::int64_t fetched_ = 0;
  std::int64_t expected_ = -1;
  std::int64_t last_report_ms_;
};

}  // namespace

JobRunner::JobRunner(JobQueue& queue, BlobStore& blobs, BlobKeeper& keeper, SourceFetcher& fetcher,
                     const Clock& clock, EventSink& events, WorkerPool& pool,
                     JobRunnerOptions options)
    : queue_(queue),
      blobs_(blobs),
      keeper_(keeper),
      fetcher_(fetcher),
      clock_(clock),
      events_(events),
      pool_(pool),
      options_(std::move(options)) {}

JobRunner::~JobRunner() { Stop(); }

void JobRunner::Start() {
  completer_ = std::jthread([this] { CompleteLoop(); });
  committer_ = std::jthread([this] { CommitLoop(); });
  dispatcher_ = std::jthread([this] { Dispatch(); });
}

void JobRunner::Stop() {
  if (stop_.exchange(true)) return;
  {
    std::lock_guard lock(mutex_);
    wake_.notify_all();
  }
  pool_.Wake();
  if (dispatcher_.joinable()) dispatcher_.join();
  {
    // Fetches handed to the committer are in flight until it settles them.
    std::unique_lock lock(mutex_);
    drained_.wait(lock, [this] { return in_flight_.empty(); });
  }
  {
    std::lock_guard lock(commit_mutex_);
    committer_stop_ = true;
  }
  handed_in_.notify_all();
  if (committer_.joinable()) committer_.join();
  // The committer told the completer to stop once it had queued its last batch.
  if (completer_.joinable()) completer_.join();
}

JobRunner::Backlog JobRunner::CurrentBacklog() {
  std::lock_guard lock(commit_mutex_);
  Backlog backlog{.handed_off = handed_off_.size(),
                  .waiting_for_room = waiting_for_room_,
                  .committed = committer_waiting_,
                  .completing = completing_,
                  .committer_waiting = committer_waiting_ > 0};
  for (const auto& batch : committed_) backlog.committed += batch.fetches.size();
  return backlog;
}

void JobRunner::Notify() {
  std::lock_guard lock(mutex_);
  notified_ = true;
  wake_.notify_all();
}

// Every wait ends at a deadline taken before the store is asked for due jobs: time that moves
// while the store is asked (a test stepping its clock, too) ends the wait at once.
void JobRunner::Dispatch() {
  std::int64_t next_renewal = clock_.MonotonicMs() + options_.lease.count() / 3;
  while (!stop_) {
    const std::int64_t now = clock_.MonotonicMs();
    if (now >= next_renewal) {
      RenewLeases();
      next_renewal = now + options_.lease.count() / 3;
    }
    const std::int64_t wait_until = std::min(now + options_.poll.count(), next_renewal);
    if (!pool_.WaitForIdle(clock_, wait_until, stop_)) continue;
    if (ClaimSome()) continue;
    std::unique_lock lock(mutex_);
    clock_.WaitUntil(lock, wake_, wait_until, [this] { return notified_ || stop_; });
    notified_ = false;
  }
}

bool JobRunner::ClaimSome() {
  // Only the dispatcher submits, so the workers idle now are still idle when the jobs arrive.
  const auto idle = static_cast<std::size_t>(std::max(pool_.IdleWorkers(), 1));
  const std::int64_t now = clock_.NowMs();
  auto jobs = queue_.ClaimJobs(options_.worker_id, now, now + options_.lease.count(),
                               std::min(idle, std::max<std::size_t>(options_.claim_batch, 1)));
  if (!jobs) {
    StoreError("claim job", UploadJob{}, jobs.error());
    return false;
  }
  for (const auto& job : *jobs) Submit(job);
  return !jobs->empty();
}

void JobRunner::Submit(const UploadJob& job) {
  {
    std::lock_guard lock(mutex_);
    in_flight_.insert(job.id);
  }
  pool_.Submit([this, job] {
    if (!Run(job)) Done(job.id);
  });
}

void JobRunner::Done(std::int64_t job_id) {
  std::lock_guard lock(mutex_);
  in_flight_.erase(job_id);
  drained_.notify_all();
}

void JobRunner::RenewLeases() {
  std::set<std::int64_t> ids;
  {
    std::lock_guard lock(mutex_);
    ids = in_flight_;
  }
  const std::int64_t until = clock_.NowMs() + options_.lease.count();
  for (auto id : ids) {
    auto renewed = queue_.RenewLease(id, options_.worker_id, until);
    if (!renewed) {
      StoreError("renew lease", UploadJob{.id = id}, renewed.error());
    } else if (!*renewed) {
      // Another worker took the job over (ours ran out): its result will be discarded.
      StoreError("renew lease", UploadJob{.id = id},
                 Error{ErrorCode::kInternal, "the lease was lost to another worker"});
    }
  }
}

bool JobRunner::Run(const UploadJob& job) {
  const std::int64_t started = clock_.MonotonicMs();
  Report(EventKind::kJobStarted, job, {.attempt = job.attempts});
  Fault("before-fetch");
  if (clock_.NowMs() >= job.deadline_ms) {
    std::string reason = "The upload did not finish before its deadline (" +
                         std::to_string(job.attempts - 1) + " attempts made)";
    if (!job.last_error.empty()) reason += "; the last one failed: " + job.last_error;
    FailPackage(job, reason + ".");
    return false;
  }
  auto writer = blobs_.Create();
  if (!writer) return Settle(job, writer.error()), false;
  JobSink sink(
      **writer, stop_, clock_, [this] { Fault("mid-fetch"); },
      [this, &job](std::int64_t bytes, std::int64_t expected) {
        // Progress is advisory: a failed write only leaves older figures shown.
        (void)queue_.ReportProgress(job, options_.worker_id, bytes, expected);
      });
  auto fetched = fetcher_.Fetch(job.url, sink);
  if (!fetched) return Settle(job, fetched.error()), false;
  Result<void> on_its_way = {};
  if (*fetched < kSealInWorkerBytes)
    on_its_way = (*writer)->BeginSeal();
  else if (auto sealed = (*writer)->Seal(); !sealed)
    on_its_way = std::unexpected(sealed.error());
  if (!on_its_way) return Settle(job, on_its_way.error()), false;
  HandOff(Fetched{job, std::move(*writer), started});
  return true;
}

void JobRunner::HandOff(Fetched fetched) {
  std::unique_lock lock(commit_mutex_);
  // Bounded by the committer, which always drains: it never waits for a worker.
  ++waiting_for_room_;
  room_.wait(lock, [this] {
    return handed_off_.size() < std::max<std::size_t>(options_.max_handed_off, 1);
  });
  --waiting_for_room_;
  handed_off_.push_back(std::move(fetched));
  handed_in_.notify_one();
}

// Takes whatever was handed in while the last batch committed (at most complete_batch), so a
// lone fetch never waits for a timer and under load the waits for the disk are shared.
void JobRunner::CommitLoop() {
  const std::size_t max_batch = std::max<std::size_t>(options_.complete_batch, 1);
  for (;;) {
    std::vector<Fetched> batch;
    {
      std::unique_lock lock(commit_mutex_);
      handed_in_.wait(lock, [this] { return committer_stop_ || !handed_off_.empty(); });
      if (handed_off_.empty()) break;  // stopping, with nothing left
      while (!handed_off_.empty() && batch.size() < max_batch) {
        batch.push_back(std::move(handed_off_.front()));
        handed_off_.pop_front();
      }
    }
    room_.notify_all();
    CommitBatch(std::move(batch));
  }
  {
    std::lock_guard lock(commit_mutex_);
    completer_stop_ = true;
  }
  committed_in_.notify_all();
}

// A package is made READY only after its bytes and its name are durable: the blobs of the
// whole batch here first, then (CompleteBatch) one transaction for all their completions.
void JobRunner::CommitBatch(std::vector<Fetched> batch) {
  CommittedBatch committed{.fetches = std::move(batch)};
  std::vector<BlobWriter*> writers;
  for (auto& fetched : committed.fetches) writers.push_back(fetched.writer.get());
  committed.blobs = keeper_.CommitPinnedAll(writers, committed.held);
  std::unique_lock lock(commit_mutex_);
  // Bounded by the completer, which always drains: it never waits for the committer.
  committer_waiting_ = committed.fetches.size();
  completer_room_.wait(lock, [this] {
    return committed_.size() < std::max<std::size_t>(options_.max_committed_batches, 1);
  });
  committer_waiting_ = 0;
  committed_.push_back(std::move(committed));
  committed_in_.notify_one();
}

void JobRunner::CompleteLoop() {
  for (;;) {
    CommittedBatch batch;
    {
      std::unique_lock lock(commit_mutex_);
      committed_in_.wait(lock, [this] { return completer_stop_ || !committed_.empty(); });
      if (committed_.empty()) return;  // stopping, with nothing left
      batch = std::move(committed_.front());
      committed_.pop_front();
      completing_ = batch.fetches.size();
    }
    completer_room_.notify_one();
    CompleteBatch(batch);
    {
      std::lock_guard lock(commit_mutex_);
      completing_ = 0;
    }
    for (const auto& fetched : batch.fetches) Done(fetched.job.id);
  }
}

// A member whose blob failed, or whose completion fails, is settled alone; the others go on.
void JobRunner::CompleteBatch(CommittedBatch& batch) {
  const auto& fetches = batch.fetches;
  const auto& blobs = batch.blobs;
  const auto& held = batch.held;
  std::vector<JobCompletion> completions;
  std::vector<std::size_t> members;  // batch index of each completion
  for (std::size_t i = 0; i < fetches.size(); ++i) {
    if (!blobs[i]) {
      Settle(fetches[i].job, blobs[i].error());
      continue;
    }
    Fault("after-blob-commit");
    // The completion releases the blob's store pin in its own transaction.
    completions.push_back(JobCompletion{fetches[i].job, *blobs[i],
                                        UnderlyingName(blobs[i]->sha256, fetches[i].job.name),
                                        keeper_.CheckFor({held[i]})});
    members.push_back(i);
  }
  if (completions.empty()) return;
  // A failure of the shared transaction is every member's.
  auto results = queue_.CompleteJobs(completions, options_.worker_id, clock_.NowMs());
  for (std::size_t k = 0; k < members.size(); ++k) {
    const std::size_t i = members[k];
    if (!results)
      Settled(fetches[i], *blobs[i], held[i], std::unexpected(results.error()));
    else if (k < results->size())
      Settled(fetches[i], *blobs[i], held[i], (*results)[k]);
    else
      Settled(fetches[i], *blobs[i], held[i],
              Fail(ErrorCode::kInternal, "metadata store failure: one result per completion"));
  }
}

void JobRunner::Settled(const Fetched& fetched, const BlobInfo& blob, const HeldBlob& held,
                        const CompletionResult& previous) {
  const UploadJob& job = fetched.job;
  if (previous) {
    keeper_.Committed({held});
  } else {
    keeper_.Unpin({held});
  }
  if (!previous && previous.error().retryable) {
    // The pin ran out and another instance reclaimed the new bytes first: fetch again.
    Settle(job, previous.error());
  } else if (!previous) {
    StoreError("complete job", job, previous.error());
  } else if (*previous) {
    Report(EventKind::kJobReady, job,
           {.sha256 = blob.sha256,
            .attempt = job.attempts,
            .bytes = blob.size,
            .duration_ms = clock_.MonotonicMs() - fetched.started});
  }
  // Applied: the replaced bytes may go. Discarded or failed: the new bytes may go (a failed
  // completion leaves the job leased; it is claimed again when the lease runs out).
  keeper_.Reclaim({previous && *previous ? **previous : blob.sha256});
}

void JobRunner::Settle(const UploadJob& job, const Error& error) {
  if (error.code == ErrorCode::kShuttingDown) return Retry(job, 0, error.message);
  if (!error.retryable) return FailPackage(job, error.message);
  const std::int64_t delay = Backoff(job.attempts).count();
  if (clock_.NowMs() + delay < job.deadline_ms) return Retry(job, delay, error.message);
  FailPackage(job, error.message + " (gave up after " + std::to_string(job.attempts) +
                       " attempts: the upload deadline was reached)");
}

void JobRunner::Retry(const UploadJob& job, std::int64_t delay_ms, const std::string& cause) {
  if (auto retried = queue_.RetryJob(job, options_.worker_id, clock_.NowMs() + delay_ms, cause);
      !retried)
    return StoreError("retry job", job, retried.error());
  Report(EventKind::kJobRetrying, job,
         {.attempt = job.attempts, .delay_ms = delay_ms, .cause = cause});
}

void JobRunner::FailPackage(const UploadJob& job, const std::string& reason) {
  if (auto failed = queue_.FailJob(job, options_.worker_id, reason, clock_.NowMs()); !failed)
    return StoreError("fail job", job, failed.error());
  Report(EventKind::kJobFailed, job, {.attempt = job.attempts, .cause = reason});
}

void JobRunner::Report(EventKind kind, const UploadJob& job, Event event) const {
  event.kind = kind;
  event.job_id = job.id;
  event.project = job.project;
  event.group = job.group;
  event.name = job.name;
  events_.Report(event);
}

void JobRunner::StoreError(std::string_view operation, const UploadJob& job,
                           const Error& error) const {
  Report(EventKind::kStoreError, job,
         {.operation = std::string(operation), .attempt = job.attempts, .cause = error.message});
}

// Full jitter: uniform in [0, min(cap, base * 2^(attempts-1))], so clients retrying the same
// failing source spread out instead of arriving together.
std::chrono::milliseconds JobRunner::Backoff(int attempts) const {
  const int doublings = std::clamp(attempts - 1, 0, 30);
  const auto ceiling = std::max<std::int64_t>(
      1,
      std::min<std::int64_t>(options_.retry_cap.count(), options_.retry_base.count() << doublings));
  const double share = options_.jitter ? std::clamp(options_.jitter(), 0.0, 1.0) : 1.0;
  return std::chrono::milliseconds(static_cast<std::int64_t>(share * static_cast<double>(ceiling)));
}

void JobRunner::Fault(std::string_view point) const {
  if (options_.fault_point) options_.fault_point(point);
}

}  // namespace dlipkg
