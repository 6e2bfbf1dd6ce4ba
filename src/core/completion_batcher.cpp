#include "core/completion_batcher.hpp"

#include <algorithm>
#include <utility>
#include <vector>

namespace dlipkg {

CompletionBatcher::CompletionBatcher(JobQueue& queue, std::string worker, const Clock& clock,
                                     std::size_t max_batch)
    : queue_(queue),
      worker_(std::move(worker)),
      clock_(clock),
      max_batch_(std::max<std::size_t>(max_batch, 1)) {}

CompletionResult CompletionBatcher::Complete(const JobCompletion& done) {
  Entry mine{&done, std::nullopt};
  std::unique_lock lock(mutex_);
  waiting_.push_back(&mine);
  while (!mine.result) {
    if (committing_)
      committed_.wait(lock);
    else
      CommitBatch(lock);
  }
  return std::move(*mine.result);
}

std::size_t CompletionBatcher::Waiting() {
  std::lock_guard lock(mutex_);
  return waiting_.size();
}

// Takes the oldest waiting completions and commits them without the lock held.
void CompletionBatcher::CommitBatch(std::unique_lock<std::mutex>& lock) {
  committing_ = true;
  std::vector<Entry*> batch;
  std::vector<JobCompletion> completions;
  while (!waiting_.empty() && batch.size() < max_batch_) {
    batch.push_back(waiting_.front());
    completions.push_back(*waiting_.front()->done);
    waiting_.pop_front();
  }
  lock.unlock();
  auto results = queue_.CompleteJobs(completions, worker_, clock_.NowMs());
  lock.lock();
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (!results)
      batch[i]->result = std::unexpected(results.error());
    else if (i < results->size())
      batch[i]->result = std::move((*results)[i]);
    else
      batch[i]->result =
          Fail(ErrorCode::kInternal, "metadata store failure: one result per completion");
  }
  committing_ = false;
  committed_.notify_all();
}

}  // namespace dlipkg
