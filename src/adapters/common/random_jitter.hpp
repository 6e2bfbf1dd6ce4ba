// The randomness the job runner spreads its retries with (JobRunnerOptions::jitter), kept out
// of the core so that tests inject a fixed value. Thread-safe: one generator per thread.
#pragma once

#include <functional>

namespace dlipkg {

// Uniform in [0, 1), seeded once per thread from std::random_device.
std::function<double()> RandomJitter();

}  // namespace dlipkg
