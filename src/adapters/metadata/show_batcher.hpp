// Gathers shows (MetadataStore::GetPackage) that arrive together into one statement, for an
// engine across a network where each statement costs a round trip and a server wake-up:
// leader/follower, as a group commit. Used by SqlMetadataStore on PostgreSQL. Thread-safe;
// Show blocks its caller for the statement (bounded by Limits::max_wait).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "adapters/metadata/metadata_sql.hpp"
#include "ports/metadata_store.hpp"

namespace dlipkg {

// A show that finds a statement slot free runs at once. One that finds every slot busy queues,
// and when a statement ends, the first queued show leads the next one, which reads every key
// queued by then (identical keys once) and hands each waiter its own answer. A queued show
// waits only for a statement that starts after it arrived, so it sees every write committed
// before it asked, as if it had run its own statement. A failed statement fails each of its
// shows with its error. Past max_batch queued shows, a show runs its own statement.
class ShowBatcher {
 public:
  using Found = std::optional<PackageRecord>;
  // Reads the keys in one statement: answers[i] for keys[i]. May throw (bad_alloc).
  using ReadMany = std::function<Result<std::vector<Found>>(std::span<const PackageKey> keys)>;

  struct Limits {
    std::size_t max_batch = 64;                  // shows queued (and read by one statement) at most
    std::size_t max_in_flight = 2;               // statements at once
    std::chrono::milliseconds max_wait{30'000};  // a queued show's wait for its answer
  };

  ShowBatcher(ReadMany read, Limits limits) : read_(std::move(read)), limits_(limits) {}

  // The package at `key`, or nullopt. Errors: those of ReadMany; kInternal when the answer
  // took longer than max_wait.
  Result<Found> Show(const PackageKey& key);

 private:
  struct Waiter {
    explicit Waiter(const PackageKey& k) : key(k) {}
    PackageKey key;
    std::condition_variable woken;
    bool lead = false;  // leads the next statement, with the queue
    bool done = false;  // answer is set
    Result<Found> answer;
  };
  using Batch = std::vector<std::shared_ptr<Waiter>>;

  // Reads `batch`'s keys, answers each waiter, then hands the slot to the first queued show
  // (or frees it).
  void Run(const Batch& batch);
  Result<std::vector<Found>> ReadUnique(const Batch& batch, std::vector<std::size_t>& index);

  const ReadMany read_;
  const Limits limits_;
  std::mutex mutex_;
  std::size_t in_flight_ = 0;                  // statements running (or handed over)
  std::deque<std::shared_ptr<Waiter>> queue_;  // only while every slot is busy
};

}  // namespace dlipkg
