#include "adapters/common/random_jitter.hpp"

#include <random>

namespace dlipkg {

std::function<double()> RandomJitter() {
  return [] {
    thread_local std::mt19937_64 random{std::random_device{}()};
    return std::uniform_real_distribution<double>(0.0, 1.0)(random);
  };
}

}  // namespace dlipkg
