#include "api/download_headers.hpp"

#include <gtest/gtest.h>

namespace dlipkg::api {
namespace {

TEST(DownloadHeaders, HttpDate) {
  EXPECT_EQ(HttpDate(784111777000), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(HttpDate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
}

TEST(DownloadHeaders, ContentDispositionKeepsUtf8InFilenameStar) {
  EXPECT_EQ(ContentDisposition("a b.py"),
            "attachment; filename=\"a b.py\"; filename*=UTF-8''a%20b.py");
  EXPECT_EQ(ContentDisposition("é\"x"),
            "attachment; filename=\"___x\"; filename*=UTF-8''%C3%A9%22x");
}

TEST(DownloadHeaders, ReprDigestIsBase64OfTheDigest) {
  // SHA-256 of "abc".
  EXPECT_EQ(ReprDigest("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            "sha-256=:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=:");
}

TEST(DownloadHeaders, IfNoneMatch) {
  EXPECT_TRUE(IfNoneMatchHits("*", "\"a\""));
  EXPECT_TRUE(IfNoneMatchHits("\"b\", W/\"a\"", "\"a\""));
  EXPECT_FALSE(IfNoneMatchHits("\"b\"", "\"a\""));
}

TEST(DownloadHeaders, Ranges) {
  ByteRange r;
  EXPECT_EQ(ParseRange(std::nullopt, 10, r), RangeOutcome::kIgnore);
  ASSERT_EQ(ParseRange("bytes=0-0", 10, r), RangeOutcome::kSatisfiable);
  EXPECT_EQ(r.first, 0);
  EXPECT_EQ(r.length, 1);
  ASSERT_EQ(ParseRange("bytes=-3", 10, r), RangeOutcome::kSatisfiable);
  EXPECT_EQ(r.first, 7);
  EXPECT_EQ(r.length, 3);
  ASSERT_EQ(ParseRange("bytes=-30", 10, r), RangeOutcome::kSatisfiable);
  EXPECT_EQ(r.first, 0);
  EXPECT_EQ(r.length, 10);
  ASSERT_EQ(ParseRange("bytes=4-", 10, r), RangeOutcome::kSatisfiable);
  EXPECT_EQ(r.length, 6);
  ASSERT_EQ(ParseRange("bytes=8-100", 10, r), RangeOutcome::kSatisfiable);
  EXPECT_EQ(r.length, 2);
  EXPECT_EQ(ParseRange("bytes=10-", 10, r), RangeOutcome::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=-0", 10, r), RangeOutcome::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=0-", 0, r), RangeOutcome::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=5-2", 10, r), RangeOutcome::kIgnore);
  EXPECT_EQ(ParseRange("bytes=0-1,3-4", 10, r), RangeOutcome::kIgnore);
  EXPECT_EQ(ParseRange("items=0-1", 10, r), RangeOutcome::kIgnore);
  EXPECT_EQ(ParseRange("bytes=x-1", 10, r), RangeOutcome::kIgnore);
}

}  // namespace
}  // namespace dlipkg::api
