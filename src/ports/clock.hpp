// Time source for the core, injected so that tests move time themselves: the core never reads
// the real clock nor waits on it directly. Implementations must be thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>

namespace dlipkg {

class Clock {
 public:
  virtual ~Clock() = default;
  // Unix epoch milliseconds: what is stored and shown. May jump (NTP, an operator).
  virtual std::int64_t NowMs() const = 0;
  // Milliseconds since an arbitrary origin, never going back: what intervals, leases' renewal
  // periods and waits are measured in.
  virtual std::int64_t MonotonicMs() const = 0;
  // condition_variable::wait_until on this clock: with `lock` held (released while waiting),
  // waits on `cv` until `ready()` holds or MonotonicMs() reaches `deadline_ms`. Returns
  // ready(). What `ready()` reads must change under `lock`'s mutex, then `cv` be notified.
  virtual bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                         std::int64_t deadline_ms, const std::function<bool()>& ready) const = 0;
};

}  // namespace dlipkg
