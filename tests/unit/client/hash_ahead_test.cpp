// The hash push computes on a second thread: the file's SHA-256, never read further ahead of the
// bytes sent than its lead, and a file that turns out shorter than announced is an error.
#include "client/hash_ahead.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <span>
#include <string>
#include <thread>

#include "testing/random_bytes.hpp"
#include "testing/temp_dir.hpp"

namespace dlipkg::client {
namespace {

constexpr std::int64_t kMiB = 1 << 20;

using test::RandomBytes;
using test::Sha256Of;

struct OpenFile {
  explicit OpenFile(const std::filesystem::path& path) : fd(::open(path.c_str(), O_RDONLY)) {}
  ~OpenFile() { ::close(fd); }
  int fd;
};

// Polls `done` until it holds or 10 s pass; true if it held.
template <typename F>
bool WaitFor(F done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

TEST(HashAhead, HashesTheWholeFileAsItIsSent) {
  test::TempDir dir;
  const auto bytes = RandomBytes(3 * kMiB + 12345);
  OpenFile file(dir.WriteFile("f", bytes));
  HashAhead hash(file.fd, static_cast<std::int64_t>(bytes.size()));
  for (std::int64_t sent = 0; sent < static_cast<std::int64_t>(bytes.size()); sent += 65536)
    hash.Sent(sent);
  std::string why;
  const auto hex = hash.Finish(&why);
  ASSERT_TRUE(hex.has_value()) << why;
  EXPECT_EQ(*hex, Sha256Of(bytes));
}

TEST(HashAhead, StaysWithinItsLeadOfTheBytesSent) {
  test::TempDir dir;
  const auto bytes = RandomBytes(8 * kMiB);
  OpenFile file(dir.WriteFile("f", bytes));
  HashAhead hash(file.fd, 8 * kMiB, /*lead_bytes=*/2 * kMiB);
  // Nothing sent yet: it hashes up to its lead and waits there.
  ASSERT_TRUE(WaitFor([&] { return hash.Hashed() == 2 * kMiB; })) << hash.Hashed();
  hash.Sent(3 * kMiB);
  ASSERT_TRUE(WaitFor([&] { return hash.Hashed() == 5 * kMiB; })) << hash.Hashed();
  // A retry that starts again at 0 does not pull the mark back.
  hash.Sent(kMiB);
  std::string why;
  const auto hex = hash.Finish(&why);
  ASSERT_TRUE(hex.has_value()) << why;
  EXPECT_EQ(*hex, Sha256Of(bytes));
}

TEST(HashAhead, AFileShorterThanAnnouncedIsAnError) {
  test::TempDir dir;
  const auto bytes = RandomBytes(kMiB + 7);
  OpenFile file(dir.WriteFile("f", bytes));
  HashAhead hash(file.fd, 2 * kMiB);
  std::string why;
  EXPECT_FALSE(hash.Finish(&why).has_value());
  EXPECT_EQ(why, "it got shorter");
}

TEST(HashAhead, StopsWhenDroppedUnfinished) {
  test::TempDir dir;
  const auto bytes = RandomBytes(4 * kMiB);
  OpenFile file(dir.WriteFile("f", bytes));
  {
    HashAhead hash(file.fd, 4 * kMiB, /*lead_bytes=*/kMiB);
    ASSERT_TRUE(WaitFor([&] { return hash.Hashed() == kMiB; }));
  }  // the destructor must not wait for bytes that will never be sent
  SUCCEED();
}

}  // namespace
}  // namespace dlipkg::client
