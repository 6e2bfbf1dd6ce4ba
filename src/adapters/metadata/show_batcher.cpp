#include "adapters/metadata/show_batcher.hpp"

#include <algorithm>
#include <exception>
#include <string>
#include <unordered_map>
#include <utility>

namespace dlipkg {

Result<ShowBatcher::Found> ShowBatcher::Show(const PackageKey& key) {
  auto self = std::make_shared<Waiter>(key);
  Batch batch;
  {
    std::unique_lock lock(mutex_);
    if (in_flight_ < limits_.max_in_flight) {
      ++in_flight_;
      batch.push_back(self);
    } else if (queue_.size() < limits_.max_batch) {
      queue_.push_back(self);
      if (!self->woken.wait_for(lock, limits_.max_wait, [&] { return self->lead || self->done; })) {
        // Still queued (a leader that took it would have answered it or may still): leave.
        const auto it = std::find(queue_.begin(), queue_.end(), self);
        if (it != queue_.end()) queue_.erase(it);
        return Fail(ErrorCode::kInternal,
                    "metadata store failure: no answer from the database in time");
      }
      if (self->done) return std::move(self->answer);
      // Leading: every show queued by now arrived before this statement starts.
      batch.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
      queue_.clear();
    }
  }
  if (batch.empty()) {  // the queue is full: a statement of its own, still after it arrived
    auto one = read_(std::span(&key, 1));
    if (!one) return std::unexpected(one.error());
    if (one->size() != 1) return Fail(ErrorCode::kInternal, "metadata store failure: no result");
    return std::move(one->front());
  }
  Run(batch);
  return std::move(self->answer);
}

Result<std::vector<ShowBatcher::Found>> ShowBatcher::ReadUnique(const Batch& batch,
                                                                std::vector<std::size_t>& index) {
  // Identical keys (a popular package) are read once.
  std::vector<PackageKey> keys;
  std::unordered_map<std::string, std::size_t> seen;
  for (const auto& waiter : batch) {
    const auto& key = waiter->key;
    const auto [it, added] =
        seen.try_emplace(JoinedPackageKey(key.project, key.group, key.name), keys.size());
    if (added) keys.push_back(waiter->key);
    index.push_back(it->second);
  }
  try {
    auto read = read_(keys);
    if (read && read->size() != keys.size())
      return Fail(ErrorCode::kInternal, "metadata store failure: no result");
    return read;
  } catch (const std::exception& e) {  // out of memory: the waiters must hear of it all the same
    return Fail(ErrorCode::kInternal, std::string("metadata store failure: ") + e.what());
  }
}

void ShowBatcher::Run(const Batch& batch) {
  std::vector<std::size_t> index;
  auto read = ReadUnique(batch, index);
  std::lock_guard lock(mutex_);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    Waiter& waiter = *batch[i];
    if (read)
      waiter.answer = (*read)[index[i]];
    else
      waiter.answer = std::unexpected(read.error());
    waiter.done = true;
    waiter.woken.notify_one();
  }
  if (queue_.empty()) {
    --in_flight_;
  } else {
    queue_.front()->lead = true;
    queue_.front()->woken.notify_one();
  }
}

}  // namespace dlipkg
