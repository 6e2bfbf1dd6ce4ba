// Settles finished asynchronous uploads in shared transactions (group commit): a worker whose
// fetch is done hands its completion in and waits for the result. If no commit is running it
// commits at once everything handed in so far (at most `max_batch`); otherwise it waits for
// the running commit and is taken by the next one. A lone completion so never waits for a
// timer, and under load the commits (each an fsync on SQLite, a round trip on PostgreSQL) are
// shared: at most one commit runs, and each waits for at most the commits ahead of it (the
// queue is bounded by the callers, which wait). Used by JobRunner. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <string>

#include "ports/clock.hpp"
#include "ports/job_queue.hpp"

namespace dlipkg {

class CompletionBatcher {
 public:
  CompletionBatcher(JobQueue& queue, std::string worker, const Clock& clock, std::size_t max_batch);

  // Commits `done` (with others handed in meanwhile) and returns its result, as
  // JobQueue::CompleteJobs gives it; a failure of the shared transaction is every member's.
  CompletionResult Complete(const JobCompletion& done);
  // Completions handed in and waiting for a commit to take them (tests, metrics).
  std::size_t Waiting();

 private:
  struct Entry {
    const JobCompletion* done;
    std::optional<CompletionResult> result;
  };
  void CommitBatch(std::unique_lock<std::mutex>& lock);

  JobQueue& queue_;
  const std::string worker_;
  const Clock& clock_;
  const std::size_t max_batch_;
  std::mutex mutex_;
  std::condition_variable committed_;
  std::deque<Entry*> waiting_;  // handed in, not yet taken by a commit; oldest first
  bool committing_ = false;
};

}  // namespace dlipkg
