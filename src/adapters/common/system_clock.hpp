// The real clock for production: system_clock for dates, steady_clock for intervals and waits.
// Thread-safe.
#pragma once

#include <chrono>

#include "ports/clock.hpp"

namespace dlipkg {

class SystemClock final : public Clock {
 public:
  std::int64_t NowMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  std::int64_t MonotonicMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 std::int64_t deadline_ms, const std::function<bool()>& ready) const override {
    const std::chrono::steady_clock::time_point deadline{std::chrono::milliseconds(deadline_ms)};
    return cv.wait_until(lock, deadline, ready);
  }
};

}  // namespace dlipkg
