// The hash computed on a second thread while the caller works: the same digest as hashing in
// line, whatever mix of in-line and overlapped updates, and the caller's work result (or its
// exception) comes back only once the thread is done with the bytes.
#include "adapters/common/overlapped_sha256.hpp"

#include <gtest/gtest.h>

#include <random>
#include <stdexcept>
#include <string>
#include <thread>

#include "testing/random_bytes.hpp"

namespace dlipkg {
namespace {

using test::RandomBytes;
using test::Sha256Of;

TEST(OverlappedSha256, MixedUpdatesGiveTheInLineDigest) {
  const auto bytes = RandomBytes(5 << 20);
  OverlappedSha256 hasher;
  std::size_t at = 0;
  std::size_t step = 1000;
  int calls = 0;
  while (at < bytes.size()) {
    const auto n = std::min(step, bytes.size() - at);
    const std::span<const char> chunk(bytes.data() + at, n);
    if (calls++ % 2 == 0) {
      hasher.Update(chunk);
    } else {
      const auto here = std::this_thread::get_id();
      EXPECT_EQ(hasher.UpdateWhile(chunk, [&] { return std::this_thread::get_id(); }), here);
    }
    at += n;
    step = step * 3 / 2 + 1;
  }
  EXPECT_EQ(hasher.FinishHex(), Sha256Of(bytes));
}

TEST(OverlappedSha256, TheBufferMayBeReusedOnceTheCallReturns) {
  // Each round overwrites the buffer right after the call: if the thread were still reading it,
  // the digest would differ from the in-line one.
  std::string all;
  OverlappedSha256 hasher;
  std::string buffer(1 << 20, '\0');
  std::mt19937_64 random(9);
  for (int round = 0; round < 16; ++round) {
    for (auto& c : buffer) c = static_cast<char>(random());
    all += buffer;
    hasher.UpdateWhile(std::span<const char>(buffer.data(), buffer.size()), [] { return 0; });
  }
  EXPECT_EQ(hasher.FinishHex(), Sha256Of(all));
}

TEST(OverlappedSha256, AnExceptionFromTheWorkWaitsForTheThread) {
  const auto bytes = RandomBytes(4 << 20);
  OverlappedSha256 hasher;
  EXPECT_THROW(hasher.UpdateWhile(std::span<const char>(bytes.data(), bytes.size()),
                                  []() -> int { throw std::runtime_error("disk"); }),
               std::runtime_error);
  // The bytes were hashed all the same; the stream goes on from there.
  hasher.Update(std::span<const char>(bytes.data(), 10));
  EXPECT_EQ(hasher.FinishHex(), Sha256Of(bytes + bytes.substr(0, 10)));
}

}  // namespace
}  // namespace dlipkg
