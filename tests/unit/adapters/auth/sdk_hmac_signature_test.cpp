// The SDK-HMAC-SHA256 building blocks against docs/auth.md: the published test vector, and each
// canonicalisation rule on the inputs real SDK clients send.
#include "adapters/auth/sdk_hmac_signature.hpp"

#include <gtest/gtest.h>

namespace dlipkg {
namespace {

constexpr std::string_view kEmptyHash =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(SdkHmacSignature, ReproducesTheSpecTestVector) {
  const CanonicalRequestParts parts{
      .method = "GET",
      .raw_target =
          "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs?limit=2&marker=13551d6b-755d-4757-"
          "b956-536f674975c0",
      .headers = {{"content-type", "application/json"},
                  {"host", "service.region.example.com"},
                  {"x-sdk-date", "20191115T033655Z"}},
      .payload_hash = PayloadHash("")};
  const auto canonical = CanonicalRequest(parts);
  ASSERT_TRUE(canonical);
  EXPECT_EQ(*canonical,
            "GET\n"
            "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs/\n"
            "limit=2&marker=13551d6b-755d-4757-b956-536f674975c0\n"
            "content-type:application/json\n"
            "host:service.region.example.com\n"
            "x-sdk-date:20191115T033655Z\n"
            "\n"
            "content-type;host;x-sdk-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(PayloadHash(*canonical),
            "b25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a");
  const auto string_to_sign = StringToSign("20191115T033655Z", *canonical);
  EXPECT_EQ(string_to_sign,
            "SDK-HMAC-SHA256\n20191115T033655Z\n"
            "b25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a");
  EXPECT_EQ(HmacSha256Hex("MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc", string_to_sign),
            "7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe");
}

TEST(SdkHmacSignature, EncodesEverythingButUnreservedWithUpperCaseHex) {
  EXPECT_EQ(SdkUrlEncode("AZaz09-_.~"), "AZaz09-_.~");
  EXPECT_EQ(SdkUrlEncode("a b+c/d=e&f%g*h'i!"), "a%20b%2Bc%2Fd%3De%26f%25g%2Ah%27i%21");
  EXPECT_EQ(SdkUrlEncode("\xe6\x95\xb0"), "%E6%95%B0");
}

TEST(SdkHmacSignature, NodeFormEncodesTheSentPathAgain) {
  EXPECT_EQ(CanonicalUri("/v2.0/p1/resources/a%20b.py", UriForm::kEncodedAsSent),
            "/v2.0/p1/resources/a%2520b.py/");
  EXPECT_EQ(CanonicalUri("/v2.0/p1/resources/a+b~c.py", UriForm::kEncodedAsSent),
            "/v2.0/p1/resources/a%2Bb~c.py/");
  EXPECT_EQ(CanonicalUri("/v2.0/p1/resources/a%20b.py"), "/v2.0/p1/resources/a%20b.py/");
}

TEST(SdkHmacSignature, CanonicalUriDecodesEachSegmentOnceAndAddsTheTrailingSlash) {
  EXPECT_EQ(CanonicalUri("/v2.0/p1/resources/pyfiles"), "/v2.0/p1/resources/pyfiles/");
  EXPECT_EQ(CanonicalUri("/v2.0/p1/resources/"), "/v2.0/p1/resources/");
  EXPECT_EQ(CanonicalUri("/"), "/");
  EXPECT_EQ(CanonicalUri(""), "/");
  // As the Python SDK sends path parameters: quote(name, safe="").
  EXPECT_EQ(CanonicalUri("/v2.0/p1/resources/a%20b%2Bc~d.py"),
            "/v2.0/p1/resources/a%20b%2Bc~d.py/");
  EXPECT_EQ(CanonicalUri("/v2.0/p1/resources/%E6%95%B0%E6%8D%AE.py"),
            "/v2.0/p1/resources/%E6%95%B0%E6%8D%AE.py/");
  // Lower-case hex, or characters a client left unencoded, canonicalise the same.
  EXPECT_EQ(CanonicalUri("/r/%e6%95%b0.py"), "/r/%E6%95%B0.py/");
  EXPECT_EQ(CanonicalUri("/r/a+b!.py"), "/r/a%2Bb%21.py/");
  // Decoded once only: "%2520" is the three characters "%20", re-encoded.
  EXPECT_EQ(CanonicalUri("/r/a%2520b"), "/r/a%2520b/");
  EXPECT_EQ(CanonicalUri("/r/dir%2Fsub.py"), "/r/dir%2Fsub.py/");
  EXPECT_FALSE(CanonicalUri("/r/bad%zz"));
  EXPECT_FALSE(CanonicalUri("/r/bad%4"));
}

TEST(SdkHmacSignature, CanonicalQuerySortsByNameThenValueAndKeepsEquals) {
  EXPECT_EQ(CanonicalQuery(""), "");
  EXPECT_EQ(CanonicalQuery("b=2&a=1"), "a=1&b=2");
  // Byte order: upper case sorts before lower case.
  EXPECT_EQ(CanonicalQuery("b=1&B=2&a=3&A=4"), "A=4&B=2&a=3&b=1");
  EXPECT_EQ(CanonicalQuery("tag=z&tag=a&tag=M"), "tag=M&tag=a&tag=z");
  EXPECT_EQ(CanonicalQuery("kind=&group"), "group=&kind=");
  EXPECT_EQ(CanonicalQuery("tags=k%3Dv%2Cx%20y&kind=pyFile"), "kind=pyFile&tags=k%3Dv%2Cx%20y");
  EXPECT_EQ(CanonicalQuery("a%20b=c+d~"), "a%20b=c%2Bd~");
  EXPECT_EQ(CanonicalQuery("&&a=1&"), "a=1");
  EXPECT_FALSE(CanonicalQuery("a=%G0"));
}

TEST(SdkHmacSignature, CanonicalRequestWithNoQueryHasAnEmptyLineAndTrimsHeaderValues) {
  const auto canonical = CanonicalRequest({.method = "DELETE",
                                           .raw_target = "/v2.0/p1/resources/a.py",
                                           .headers = {{"x-sdk-date", "  20240101T000000Z \t"}},
                                           .payload_hash = std::string(kUnsignedPayload)});
  ASSERT_TRUE(canonical);
  EXPECT_EQ(*canonical,
            "DELETE\n/v2.0/p1/resources/a.py/\n\nx-sdk-date:20240101T000000Z\n\nx-sdk-date\n"
            "UNSIGNED-PAYLOAD");
  EXPECT_EQ(PayloadHash(""), kEmptyHash);
}

TEST(SdkHmacSignature, ParsesTheAuthorizationHeaderOfEverySdk) {
  const auto parsed = ParseSdkAuthorization(
      "SDK-HMAC-SHA256 Access=AK1, SignedHeaders=content-type;host;x-sdk-date, Signature=abc");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->access_key, "AK1");
  EXPECT_EQ(parsed->signed_headers,
            (std::vector<std::string_view>{"content-type", "host", "x-sdk-date"}));
  EXPECT_EQ(parsed->signature, "abc");
  EXPECT_TRUE(
      ParseSdkAuthorization("SDK-HMAC-SHA256 Access=A,SignedHeaders=x-sdk-date,"
                            "Signature=s"));
  for (const char* bad :
       {"", "SDK-HMAC-SHA256", "SDK-HMAC-SHA256Access=A, SignedHeaders=x, Signature=s",
        "AWS4-HMAC-SHA256 Access=A, SignedHeaders=x, Signature=s",
        "SDK-HMAC-SHA256 Access=A, SignedHeaders=x",
        "SDK-HMAC-SHA256 Access=A, Access=B, "
        "SignedHeaders=x, Signature=s",
        "SDK-HMAC-SHA256 Access=, SignedHeaders=x, Signature=s",
        "SDK-HMAC-SHA256 Access=A, SignedHeaders=a;;b, Signature=s",
        "SDK-HMAC-SHA256 Access=A, SignedHeaders=x, Signature=s, Other=1"})
    EXPECT_FALSE(ParseSdkAuthorization(bad)) << bad;
}

TEST(SdkHmacSignature, ComparesInConstantTimeButCorrectly) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

}  // namespace
}  // namespace dlipkg
