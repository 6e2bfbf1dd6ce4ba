// Runs queued asynchronous uploads: claims due jobs while pool workers are idle (as many as are
// idle, in one transaction), fetches each source into a blob, commits it, and settles the
// package (READY with others finishing at the same time in one transaction, retried later, or
// FAILED).
// Retryable failures (timeouts, resets, 5xx, 429) back off exponentially with full jitter
// inside the job's deadline; the others fail at once with the cause as the reason. Leases of
// jobs in flight are renewed while they run. Every step is reported to the EventSink. Time and
// randomness come from the injected Clock and jitter source only, so tests step time.
// Start/Stop from one thread; the rest is internal.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>

#include "core/blob_keeper.hpp"
#include "core/completion_batcher.hpp"
#include "core/worker_pool.hpp"
#include "ports/blob_store.hpp"
#include "ports/clock.hpp"
#include "ports/event_sink.hpp"
#include "ports/job_queue.hpp"
#include "ports/source_fetcher.hpp"

namespace dlipkg {

struct JobRunnerOptions {
  std::string worker_id = "worker";  // unique per process: leases are held in its name
  std::chrono::milliseconds lease{60'000};
  std::chrono::milliseconds poll{500};  // how often to look for due jobs when not notified
  std::chrono::milliseconds retry_base{500};
  std::chrono::milliseconds retry_cap{30'000};
  // Jobs claimed in one transaction at most (never more than the idle workers), and
  // completions committed in one (CompletionBatcher).
  std::size_t claim_batch = 8;
  std::size_t complete_batch = 16;
  // Uniform in [0, 1): the share of the backoff ceiling a retry waits (full jitter). The app
  // passes RandomJitter(); empty waits the whole ceiling, which tests use to know the delays.
  std::function<double()> jitter;
  // Fault injection for crash tests: called at "before-fetch", "mid-fetch" and
  // "after-blob-commit". Empty in production.
  std::function<void(std::string_view)> fault_point;
};

class JobRunner {
 public:
  JobRunner(JobQueue& queue, BlobStore& blobs, BlobKeeper& keeper, SourceFetcher& fetcher,
            const Clock& clock, EventSink& events, WorkerPool& pool, JobRunnerOptions options);
  ~JobRunner();
  JobRunner(const JobRunner&) = delete;
  JobRunner& operator=(const JobRunner&) = delete;

  void Start();
  // Stops claiming; fetches in flight are abandoned at their next chunk and their jobs made due
  // again, so the next start (or another instance) resumes them. Waits for them. Idempotent.
  void Stop();
  // New jobs were queued: look for them now rather than at the next poll.
  void Notify();

 private:
  void Dispatch();
  // Claims due jobs for the idle workers (one transaction) and hands them to the pool; false
  // when none was due (or the store failed).
  bool ClaimSome();
  void Submit(const UploadJob& job);
  // After the fetch: commits the blob and settles the job with the others finishing now.
  void Finish(const UploadJob& job, BlobWriter& writer, std::int64_t started);
  void RenewLeases();
  void Run(const UploadJob& job);
  void Settle(const UploadJob& job, const Error& error);
  void Retry(const UploadJob& job, std::int64_t delay_ms, const std::string& cause);
  void FailPackage(const UploadJob& job, const std::string& reason);
  void Report(EventKind kind, const UploadJob& job, Event event) const;
  void StoreError(std::string_view operation, const UploadJob& job, const Error& error) const;
  std::chrono::milliseconds Backoff(int attempts) const;
  void Fault(std::string_view point) const;

  JobQueue& queue_;
  BlobStore& blobs_;
  BlobKeeper& keeper_;
  SourceFetcher& fetcher_;
  const Clock& clock_;
  EventSink& events_;
  WorkerPool& pool_;
  JobRunnerOptions options_;
  CompletionBatcher completions_;

  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool notified_ = false;
  std::set<std::int64_t> in_flight_;
  std::condition_variable drained_;
  std::jthread dispatcher_;
};

}  // namespace dlipkg
