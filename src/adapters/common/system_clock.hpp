// The real clock (system_clock), for production. Thread-safe.
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
};

}  // namespace dlipkg
