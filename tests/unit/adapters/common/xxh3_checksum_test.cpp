#include "adapters/common/xxh3_checksum.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace dlipkg {
namespace {

std::string ChecksumOf(std::string_view text) {
  auto checksum = NewXxh3Checksum();
  checksum->Update(text);
  return checksum->FinishHex();
}

// The values `xxhsum -H2` and Python's xxhash.xxh3_128_hexdigest print for these inputs.
TEST(Xxh3Checksum, KnownVectors) {
  EXPECT_EQ(ChecksumOf(""), "99aa06d3014798d86001c324468d497f");
  EXPECT_EQ(ChecksumOf("abc"), "06b05ab6733a618578af5f94892f3950");
}

TEST(Xxh3Checksum, ChunksSumLikeTheWhole) {
  std::string whole(300'000, '\0');
  for (std::size_t i = 0; i < whole.size(); ++i) whole[i] = static_cast<char>(i * 7919 % 251);
  auto checksum = NewXxh3Checksum();
  for (std::size_t at = 0, step = 1; at < whole.size(); at += step, step = step * 3 + 1)
    checksum->Update(std::string_view(whole).substr(at, step));
  EXPECT_EQ(checksum->FinishHex(), ChecksumOf(whole));
  EXPECT_NE(ChecksumOf(whole), ChecksumOf(whole.substr(1)));
}

}  // namespace
}  // namespace dlipkg
