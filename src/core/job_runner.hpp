// Runs queued asynchronous uploads: claims due jobs while pool workers are idle (as many as are
// idle, in one transaction), fetches each source into a blob, and settles the package (READY,
// retried later, or FAILED). A finished fetch is handed to the committer thread, and its worker
// takes the next job: the committer makes the fetches handed in meanwhile durable together
// (their files synced, renamed, their directories synced: BlobKeeper::CommitPinnedAll) and
// only then makes them READY in one transaction (group commit), so the waits for the disk are
// shared by a batch instead of paid by each package.
// Retryable failures (timeouts, resets, 5xx, 429) back off exponentially with full jitter
// inside the job's deadline; the others fail at once with the cause as the reason. Leases of
// jobs in flight are renewed while they run. Every step is reported to the EventSink. Time and
// randomness come from the injected Clock and jitter source only, so tests step time.
// Start/Stop from one thread; the rest is internal.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/blob_keeper.hpp"
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
  // Jobs claimed in one transaction at most (never more than the idle workers), and fetched
  // packages made durable and READY together at most. Fetches handed to the committer and
  // waiting for it are bounded by max_handed_off: a worker with a fetch done waits for room.
  std::size_t claim_batch = 8;
  std::size_t complete_batch = 32;
  std::size_t max_handed_off = 64;
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
  // Fetches waiting for the committer, and workers waiting for room to hand theirs in (tests).
  std::size_t HandedOff();
  std::size_t WaitingForRoom();

 private:
  void Dispatch();
  // Claims due jobs for the idle workers (one transaction) and hands them to the pool; false
  // when none was due (or the store failed).
  bool ClaimSome();
  void Submit(const UploadJob& job);
  // A fetch whose bytes are written, waiting to be made durable and READY.
  struct Fetched {
    UploadJob job;
    std::unique_ptr<BlobWriter> writer;
    std::int64_t started = 0;
  };
  // Queues a finished fetch for the committer; waits while max_handed_off are queued.
  void HandOff(Fetched fetched);
  void CommitLoop();
  // Commits a batch's blobs together, then their completions in one transaction.
  void CommitBatch(std::vector<Fetched>& batch);
  // Settles one member of a committed batch from its completion's result.
  void Settled(const Fetched& fetched, const BlobInfo& blob, const HeldBlob& held,
               const CompletionResult& previous);
  void Done(std::int64_t job_id);
  void RenewLeases();
  // Fetches the job; true when the fetch was handed to the committer.
  bool Run(const UploadJob& job);
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

  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool notified_ = false;
  std::set<std::int64_t> in_flight_;
  std::condition_variable drained_;
  std::jthread dispatcher_;

  std::mutex commit_mutex_;  // guards handed_off_, waiting_for_room_ and committer_stop_
  std::condition_variable handed_in_;
  std::condition_variable room_;
  std::deque<Fetched> handed_off_;
  std::size_t waiting_for_room_ = 0;
  bool committer_stop_ = false;
  std::jthread committer_;
};

}  // namespace dlipkg
