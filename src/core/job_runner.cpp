#include "core/job_runner.hpp"

#include <algorithm>
#include <random>

namespace dlipkg {
namespace {

constexpr std::string_view kShutdownMessage = "the server is shutting down";

// Streams into the blob writer; refuses further bytes once the runner stops, which makes the
// fetcher abort the transfer.
class JobSink final : public ByteSink {
 public:
  JobSink(BlobWriter& writer, const std::atomic<bool>& stop, std::function<void()> after_first)
      : writer_(writer), stop_(stop), after_first_(std::move(after_first)) {}
  Result<void> Write(std::span<const char> bytes) override {
    if (stop_) return Fail(ErrorCode::kInternal, std::string(kShutdownMessage), true);
    auto written = writer_.Write(bytes);
    if (after_first_) std::exchange(after_first_, nullptr)();
    return written;
  }
  // Reaches a fetch whose source sends nothing, so Stop does not wait for its timeouts.
  std::optional<Error> Cancelled() const override {
    if (stop_) return Error{ErrorCode::kInternal, std::string(kShutdownMessage), true};
    return std::nullopt;
  }

 private:
  BlobWriter& writer_;
  const std::atomic<bool>& stop_;
  std::function<void()> after_first_;
};

}  // namespace

JobRunner::JobRunner(JobQueue& queue, BlobStore& blobs, BlobKeeper& keeper, SourceFetcher& fetcher,
                     const Clock& clock, WorkerPool& pool, JobRunnerOptions options)
    : queue_(queue),
      blobs_(blobs),
      keeper_(keeper),
      fetcher_(fetcher),
      clock_(clock),
      pool_(pool),
      options_(std::move(options)) {}

JobRunner::~JobRunner() { Stop(); }

void JobRunner::Start() {
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
  std::unique_lock lock(mutex_);
  drained_.wait(lock, [this] { return in_flight_.empty(); });
}

void JobRunner::Notify() {
  std::lock_guard lock(mutex_);
  notified_ = true;
  wake_.notify_all();
}

void JobRunner::Dispatch() {
  auto next_renewal = std::chrono::steady_clock::now() + options_.lease / 3;
  while (!stop_) {
    if (std::chrono::steady_clock::now() >= next_renewal) {
      RenewLeases();
      next_renewal = std::chrono::steady_clock::now() + options_.lease / 3;
    }
    if (!pool_.WaitForIdle(options_.poll, stop_)) continue;
    const std::int64_t now = clock_.NowMs();
    auto job = queue_.ClaimJob(options_.worker_id, now, now + options_.lease.count());
    if (job && *job) {
      {
        std::lock_guard lock(mutex_);
        in_flight_.insert((*job)->id);
      }
      pool_.Submit([this, claimed = **job] {
        Run(claimed);
        std::lock_guard lock(mutex_);
        in_flight_.erase(claimed.id);
        drained_.notify_all();
      });
      continue;
    }
    // Nothing due (or the store failed: try again at the next poll).
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, options_.poll, [this] { return notified_ || stop_; });
    notified_ = false;
  }
}

void JobRunner::RenewLeases() {
  std::set<std::int64_t> ids;
  {
    std::lock_guard lock(mutex_);
    ids = in_flight_;
  }
  const std::int64_t until = clock_.NowMs() + options_.lease.count();
  for (auto id : ids) (void)queue_.RenewLease(id, options_.worker_id, until);
}

void JobRunner::Run(const UploadJob& job) {
  Fault("before-fetch");
  if (clock_.NowMs() >= job.deadline_ms) {
    std::string reason = "The upload did not finish before its deadline (" +
                         std::to_string(job.attempts - 1) + " attempts made)";
    if (!job.last_error.empty()) reason += "; the last one failed: " + job.last_error;
    (void)queue_.FailJob(job, options_.worker_id, reason + ".", clock_.NowMs());
    return;
  }
  auto writer = blobs_.Create();
  if (!writer) return Settle(job, writer.error());
  JobSink sink(**writer, stop_, [this] { Fault("mid-fetch"); });
  if (auto fetched = fetcher_.Fetch(job.url, sink); !fetched) return Settle(job, fetched.error());
  auto blob = keeper_.CommitPinned(**writer);
  if (!blob) return Settle(job, blob.error());
  Fault("after-blob-commit");
  auto previous = queue_.CompleteJob(job, options_.worker_id, *blob,
                                     UnderlyingName(blob->sha256, job.name), clock_.NowMs());
  keeper_.Unpin({blob->sha256});
  // Applied: the replaced bytes may go. Discarded or failed: the new bytes may go (a failed
  // completion leaves the job leased; it is claimed again when the lease runs out).
  keeper_.Reclaim({previous && *previous ? **previous : blob->sha256});
}

void JobRunner::Settle(const UploadJob& job, const Error& error) {
  const std::int64_t now = clock_.NowMs();
  if (stop_ && error.message == kShutdownMessage) {
    (void)queue_.RetryJob(job, options_.worker_id, now, error.message);
    return;
  }
  if (error.retryable) {
    const std::int64_t next = now + Backoff(job.attempts).count();
    if (next < job.deadline_ms) {
      (void)queue_.RetryJob(job, options_.worker_id, next, error.message);
      return;
    }
    (void)queue_.FailJob(job, options_.worker_id,
                         error.message + " (gave up after " + std::to_string(job.attempts) +
                             " attempts: the upload deadline was reached)",
                         now);
    return;
  }
  (void)queue_.FailJob(job, options_.worker_id, error.message, now);
}

// Full jitter: uniform in [0, min(cap, base * 2^(attempts-1))], so clients retrying the same
// failing source spread out instead of arriving together.
std::chrono::milliseconds JobRunner::Backoff(int attempts) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  const int doublings = std::clamp(attempts - 1, 0, 30);
  const auto ceiling =
      std::min<std::int64_t>(options_.retry_cap.count(), options_.retry_base.count() << doublings);
  return std::chrono::milliseconds(
      std::uniform_int_distribution<std::int64_t>(0, std::max<std::int64_t>(ceiling, 1))(random));
}

void JobRunner::Fault(std::string_view point) const {
  if (options_.fault_point) options_.fault_point(point);
}

}  // namespace dlipkg
