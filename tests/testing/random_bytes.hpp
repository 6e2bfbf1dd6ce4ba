// Reproducible pseudo-random bytes and their SHA-256, for the tests of code that hashes streams
// (the overlapped hasher, push's hash thread). Header-only; no shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>

#include "adapters/common/sha256.hpp"

namespace dlipkg::test {

inline std::string RandomBytes(std::size_t n, std::uint64_t seed = 42) {
  std::mt19937_64 random(seed);
  std::string bytes(n, '\0');
  for (auto& c : bytes) c = static_cast<char>(random());
  return bytes;
}

// Hashed in one piece, the reference the streaming hashers must agree with.
inline std::string Sha256Of(const std::string& bytes) {
  Sha256Hasher hasher;
  hasher.Update(std::span<const char>(bytes.data(), bytes.size()));
  return hasher.FinishHex();
}

}  // namespace dlipkg::test
