// The hash computed on a second thread while the caller works: the same digest as hashing in
// line, whatever mix of in-line and queued updates and whatever chunk sizes (larger than a slot,
// more chunks than slots), and the caller's buffer is free as soon as Queue returns.
#include "adapters/common/overlapped_sha256.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "testing/random_bytes.hpp"

namespace dlipkg {
namespace {

using test::RandomBytes;
using test::Sha256Of;

TEST(OverlappedSha256, MixedUpdatesGiveTheInLineDigest) {
  const auto bytes = RandomBytes(9 << 20);
  OverlappedSha256 hasher;
  std::size_t at = 0;
  std::size_t step = 1000;
  int calls = 0;
  while (at < bytes.size()) {
    const auto n = std::min(step, bytes.size() - at);
    const std::span<const char> chunk(bytes.data() + at, n);
    if (calls++ % 3 == 0)
      hasher.Update(chunk);
    else
      hasher.Queue(chunk);
    at += n;
    step = step * 3 / 2 + 1;  // up to several slots' worth in one call
  }
  EXPECT_GT(step, 2 * OverlappedSha256::kSlotBytes);
  EXPECT_EQ(hasher.FinishHex(), Sha256Of(bytes));
}

TEST(OverlappedSha256, TheBufferMayBeReusedOnceQueueReturns) {
  // Each round overwrites the buffer right after the call, and there are more rounds than slots:
  // if the thread read the caller's buffer, or a slot before it was hashed, the digest would
  // differ from the in-line one.
  std::string all;
  OverlappedSha256 hasher;
  std::string buffer(OverlappedSha256::kSlotBytes, '\0');
  std::mt19937_64 random(9);
  for (std::size_t round = 0; round < 4 * OverlappedSha256::kSlots; ++round) {
    for (auto& c : buffer) c = static_cast<char>(random());
    all += buffer;
    hasher.Queue(std::span<const char>(buffer.data(), buffer.size()));
  }
  EXPECT_EQ(hasher.FinishHex(), Sha256Of(all));
}

TEST(OverlappedSha256, DestroyedWithChunksStillQueued) {
  // A stream abandoned mid-way (the client went away): the thread stops and is joined.
  const auto bytes = RandomBytes(3 * OverlappedSha256::kSlotBytes);
  {
    OverlappedSha256 hasher;
    hasher.Queue(std::span<const char>(bytes.data(), bytes.size()));
  }
  OverlappedSha256 again;  // and a new one works as before
  again.Queue(std::span<const char>(bytes.data(), bytes.size()));
  EXPECT_EQ(again.FinishHex(), Sha256Of(bytes));
}

}  // namespace
}  // namespace dlipkg
