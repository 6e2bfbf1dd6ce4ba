// The one clock of the tests (unit and contract): see SettableClock below. Header-only.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "ports/clock.hpp"

namespace dlipkg::testing {

// The one test clock: stands still until a test moves it (Set/Advance), which wakes every wait
// on it (Clock::WaitUntil) whose deadline has come, so time-driven code runs deterministically.
// The wall clock and the monotonic reading move together. Thread-safe; the objects that wait
// on it must be destroyed before it, and Advance must not race with their destruction.
class SettableClock final : public Clock {
 public:
  static constexpr std::int64_t kStartMs = 1'700'000'000'000;

  std::int64_t NowMs() const override { return kStartMs + elapsed_; }
  std::int64_t MonotonicMs() const override { return elapsed_; }
  bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 std::int64_t deadline_ms, const std::function<bool()>& ready) const override {
    const Waiter waiter{lock.mutex(), &cv};
    {
      std::lock_guard guard(waiters_mutex_);
      waiters_.push_back(waiter);
    }
    while (!ready() && elapsed_ < deadline_ms) cv.wait(lock);
    std::lock_guard guard(waiters_mutex_);
    waiters_.erase(std::find(waiters_.begin(), waiters_.end(), waiter));
    return ready();
  }

  void Advance(std::chrono::milliseconds by) { Set(elapsed_ + by.count()); }
  // For tests of wall-clock logic (signature dates): puts NowMs() at `epoch_ms`. The monotonic
  // reading moves with it, so do not use it to go back while something waits on the clock.
  void SetNowMs(std::int64_t epoch_ms) { Set(epoch_ms - kStartMs); }
  // Moves the clock to `elapsed_ms` past its start and wakes the waits.
  void Set(std::int64_t elapsed_ms) {
    elapsed_ = elapsed_ms;
    std::vector<Waiter> waiters;
    {
      std::lock_guard guard(waiters_mutex_);
      waiters = waiters_;
    }
    // Taking each waiter's mutex orders the move before its next look at the clock: it either
    // saw the new time or is inside cv.wait and gets the notification.
    for (const Waiter& waiter : waiters) {
      std::lock_guard guard(*waiter.mutex);
      waiter.cv->notify_all();
    }
  }

 private:
  struct Waiter {
    std::mutex* mutex;
    std::condition_variable* cv;
    bool operator==(const Waiter&) const = default;
  };
  std::atomic<std::int64_t> elapsed_{0};
  mutable std::mutex waiters_mutex_;
  mutable std::vector<Waiter> waiters_;
};

}  // namespace dlipkg::testing
