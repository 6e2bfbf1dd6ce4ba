// ShowBatcher's waits and failures, with a read function that the test holds and releases:
// a failed statement fails each of its shows, a full queue runs a show on its own, and a queued
// show's wait is bounded. (Answers on a real database: the metadata store contract suite.)

#include "adapters/metadata/show_batcher.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace dlipkg {
namespace {

using namespace std::chrono_literals;

// The first read blocks until Release(), then fails; later reads follow `later`.
class HeldReads {
 public:
  using Later = std::function<Result<std::vector<ShowBatcher::Found>>(std::size_t keys)>;
  explicit HeldReads(Later later) : later_(std::move(later)) {}

  ShowBatcher::ReadMany Reader() {
    return [this](std::span<const PackageKey> keys) -> Result<std::vector<ShowBatcher::Found>> {
      std::unique_lock lock(mutex_);
      const std::size_t call = ++calls_;
      sizes_.push_back(keys.size());
      changed_.notify_all();
      if (call > 1) return later_(keys.size());
      changed_.wait_for(lock, 10s, [&] { return released_; });
      return Fail(ErrorCode::kInternal, "metadata store failure: first failed");
    };
  }
  // Waits (bounded) until `n` reads have started.
  bool WaitForCalls(std::size_t n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 10s, [&] { return calls_ >= n; });
  }
  void Release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }
  std::vector<std::size_t> sizes() {
    std::lock_guard lock(mutex_);
    return sizes_;
  }

 private:
  Later later_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::size_t calls_ = 0;
  bool released_ = false;
  std::vector<std::size_t> sizes_;
};

std::string Outcome(const Result<ShowBatcher::Found>& shown) {
  if (!shown) return shown.error().message;
  return *shown ? "found " + (*shown)->name : "absent";
}

TEST(ShowBatcher, AFailedStatementFailsEachOfItsShowsAndAFullQueueReadsAlone) {
  HeldReads reads([](std::size_t keys) -> Result<std::vector<ShowBatcher::Found>> {
    if (keys == 1) return std::vector<ShowBatcher::Found>(1);  // the show that read alone
    return Fail(ErrorCode::kInternal, "metadata store failure: batch failed");
  });
  ShowBatcher batcher(reads.Reader(), {.max_batch = 2, .max_in_flight = 1, .max_wait = 10s});
  std::string first;
  std::thread leader([&] { first = Outcome(batcher.Show({"p", "g", "a.py"})); });
  ASSERT_TRUE(reads.WaitForCalls(1));
  // Two queue behind the held statement; the third finds the queue full and reads alone.
  std::vector<std::string> outcomes(3);
  std::vector<std::thread> shows;
  const char* names[] = {"b.py", "c.py", "d.py"};
  for (int i = 0; i < 3; ++i)
    shows.emplace_back([&, i] { outcomes[i] = Outcome(batcher.Show({"p", "g", names[i]})); });
  ASSERT_TRUE(reads.WaitForCalls(2));
  reads.Release();
  leader.join();
  for (auto& t : shows) t.join();

  EXPECT_EQ(first, "metadata store failure: first failed");
  const std::multiset<std::string> got(outcomes.begin(), outcomes.end());
  EXPECT_EQ(got, (std::multiset<std::string>{"absent", "metadata store failure: batch failed",
                                             "metadata store failure: batch failed"}));
  // The held statement, the one read alone, and one statement for both queued shows.
  EXPECT_EQ(reads.sizes(), (std::vector<std::size_t>{1, 1, 2}));
}

TEST(ShowBatcher, AQueuedShowWaitsNoLongerThanItsBoundAndTheSlotIsFreedAfter) {
  HeldReads reads([](std::size_t keys) -> Result<std::vector<ShowBatcher::Found>> {
    std::vector<ShowBatcher::Found> found(keys);
    found[0] = PackageRecord{};
    found[0]->name = "later.py";
    return found;
  });
  ShowBatcher batcher(reads.Reader(), {.max_batch = 4, .max_in_flight = 1, .max_wait = 50ms});
  std::string first;
  std::thread leader([&] { first = Outcome(batcher.Show({"p", "g", "a.py"})); });
  ASSERT_TRUE(reads.WaitForCalls(1));
  const auto waited = batcher.Show({"p", "g", "b.py"});
  ASSERT_FALSE(waited);
  EXPECT_EQ(waited.error().code, ErrorCode::kInternal);
  EXPECT_EQ(waited.error().message, "metadata store failure: no answer from the database in time");
  reads.Release();
  leader.join();
  EXPECT_EQ(first, "metadata store failure: first failed");
  // The timed-out show left the queue: the next show runs at once, alone.
  EXPECT_EQ(Outcome(batcher.Show({"p", "g", "c.py"})), "found later.py");
  EXPECT_EQ(reads.sizes(), (std::vector<std::size_t>{1, 1}));
}

}  // namespace
}  // namespace dlipkg
