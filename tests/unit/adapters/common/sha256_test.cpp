#include "adapters/common/sha256.hpp"

#include <gtest/gtest.h>

#include <string>

namespace dlipkg {
namespace {

std::string HashOf(std::string_view text) {
  Sha256Hasher hasher;
  hasher.Update(text);
  return hasher.FinishHex();
}

TEST(Sha256Hasher, KnownVectors) {
  EXPECT_EQ(HashOf(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(HashOf("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Hasher, ChunksHashLikeTheWhole) {
  Sha256Hasher hasher;
  hasher.Update(std::string_view("a"));
  hasher.Update(std::string_view(""));
  hasher.Update(std::string_view("bc"));
  EXPECT_EQ(hasher.FinishHex(), HashOf("abc"));
}

}  // namespace
}  // namespace dlipkg
