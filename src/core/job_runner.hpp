// Runs queued asynchronous uploads: claims due jobs while pool workers are idle (as many as are
// idle, in one transaction), fetches each source into a blob, and settles the package (READY,
// retried later, or FAILED). A finished fetch is handed to the committer thread, and its worker
// takes the next job: the committer makes the fetches handed in meanwhile durable together
// (their files synced, renamed, their directories synced: BlobKeeper::CommitPinnedAll) and
// passes the batch to the completer thread, which makes them READY in one transaction (group
// commit). So the waits for the disk are shared by a batch instead of paid by each package, and
// the next batch's waits for the disk overlap this one's transaction.
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
  // Batches made durable and waiting for the completer are bounded by max_committed_batches:
  // the committer waits for room with its next batch durable.
  std::size_t claim_batch = 8;
  std::size_t complete_batch = 32;
  std::size_t max_handed_off = 64;
  std::size_t max_committed_batches = 1;
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
  // Where the fetches that are done and not yet settled are (tests).
  struct Backlog {
    std::size_t handed_off = 0;        // waiting for the committer
    std::size_t waiting_for_room = 0;  // workers waiting to hand theirs in
    std::size_t committed = 0;         // durable, waiting for the completer
    std::size_t completing = 0;        // in the batch the completer is settling
    bool committer_waiting = false;    // the committer waits for room with a durable batch
  };
  Backlog CurrentBacklog();

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
  // A batch whose blobs were committed (blobs[i] and held[i] are fetches[i]'s), waiting for
  // its completions.
  struct CommittedBatch {
    std::vector<Fetched> fetches;
    std::vector<Result<BlobInfo>> blobs;
    std::vector<HeldBlob> held;
  };
  // Queues a finished fetch for the committer; waits while max_handed_off are queued.
  void HandOff(Fetched fetched);
  void CommitLoop();
  // Commits a batch's blobs together and queues it for the completer; waits while
  // max_committed_batches are queued.
  void CommitBatch(std::vector<Fetched> batch);
  void CompleteLoop();
  // Settles a committed batch: its completions in one transaction, then each member.
  void CompleteBatch(CommittedBatch& batch);
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

  // Guards handed_off_, waiting_for_room_, committer_stop_, committed_, committer_waiting_,
  // completing_ and completer_stop_.
  std::mutex commit_mutex_;
  std::condition_variable handed_in_;
  std::condition_variable room_;
  std::deque<Fetched> handed_off_;
  std::size_t waiting_for_room_ = 0;
  bool committer_stop_ = false;
  std::condition_variable committed_in_;
  std::condition_variable completer_room_;
  std::deque<CommittedBatch> committed_;
  std::size_t committer_waiting_ = 0;  // fetches of the durable batch waiting for room
  std::size_t completing_ = 0;         // fetches of the batch the completer is settling
  bool completer_stop_ = false;
  std::jthread completer_;
  std::jthread committer_;
};

}  // namespace dlipkg
