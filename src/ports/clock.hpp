// Time source for the core, injected so tests control it.
// Implementations must be thread-safe.
#pragma once

#include <cstdint>

namespace dlipkg {

class Clock {
 public:
  virtual ~Clock() = default;
  // Unix epoch milliseconds.
  virtual std::int64_t NowMs() const = 0;
};

}  // namespace dlipkg
