// The one failure policy, walked as a table: every transport code and status class the fetcher
// and the S3 store meet, and the class both of them now agree on.
#include "adapters/s3/failure_class.hpp"

#include <gtest/gtest.h>

namespace dlipkg {
namespace {

TEST(FailureClassTest, TransportFailures) {
  const struct {
    CURLcode code;
    FailureClass expected;
    std::string_view cause;
  } cases[] = {
      // Decided once for both callers (the fetcher said final, the S3 store retryable).
      {CURLE_COULDNT_RESOLVE_HOST, FailureClass::kFail, "host not found"},
      {CURLE_COULDNT_CONNECT, FailureClass::kRetry, "connection refused"},
      {CURLE_OPERATION_TIMEDOUT, FailureClass::kRetry, "timed out"},
      {CURLE_RECV_ERROR, FailureClass::kRetry, "connection lost while receiving"},
      {CURLE_SEND_ERROR, FailureClass::kRetry, "connection lost while sending"},
      {CURLE_PARTIAL_FILE, FailureClass::kRetry, "transfer ended early"},
      {CURLE_GOT_NOTHING, FailureClass::kRetry, "empty reply"},
      {CURLE_SSL_CONNECT_ERROR, FailureClass::kRetry, "TLS handshake failed"},
      {CURLE_PEER_FAILED_VERIFICATION, FailureClass::kFail, "TLS certificate not trusted"},
      {CURLE_URL_MALFORMAT, FailureClass::kFail, "not a valid URL"},
      {CURLE_FILESIZE_EXCEEDED, FailureClass::kFail, "object too large"},
  };
  for (const auto& c : cases) {
    const TransportFailure failure = ClassifyTransport(c.code);
    EXPECT_EQ(failure.failure, c.expected) << c.code;
    EXPECT_EQ(failure.cause, c.cause) << c.code;
  }
}

TEST(FailureClassTest, UnlistedTransportFailureIsFinalWithCurlsText) {
  const TransportFailure failure = ClassifyTransport(CURLE_BAD_CONTENT_ENCODING);
  EXPECT_EQ(failure.failure, FailureClass::kFail);
  EXPECT_EQ(failure.cause, curl_easy_strerror(CURLE_BAD_CONTENT_ENCODING));
}

TEST(FailureClassTest, HttpStatuses) {
  const struct {
    long status;
    FailureClass expected;
  } cases[] = {
      {404, FailureClass::kNotFound}, {410, FailureClass::kNotFound}, {400, FailureClass::kFail},
      {401, FailureClass::kFail},     {403, FailureClass::kFail},     {405, FailureClass::kFail},
      {418, FailureClass::kFail},     {304, FailureClass::kFail},     {301, FailureClass::kFail},
      {408, FailureClass::kRetry},    {425, FailureClass::kRetry},    {429, FailureClass::kRetry},
      {500, FailureClass::kRetry},    {502, FailureClass::kRetry},    {503, FailureClass::kRetry},
      {504, FailureClass::kRetry},    {501, FailureClass::kFail},     {505, FailureClass::kFail},
  };
  for (const auto& c : cases) EXPECT_EQ(ClassifyStatus(c.status), c.expected) << c.status;
}

TEST(FailureClassTest, S3CodesOverrideTheStatus) {
  EXPECT_EQ(ClassifyStatus(400, "RequestTimeout"), FailureClass::kRetry);
  EXPECT_EQ(ClassifyStatus(200, "InternalError"), FailureClass::kRetry);  // in a 200 body
  EXPECT_EQ(ClassifyStatus(503, "SlowDown"), FailureClass::kRetry);
  EXPECT_EQ(ClassifyStatus(403, "NoSuchBucket"), FailureClass::kNotFound);
  EXPECT_EQ(ClassifyStatus(404, "NoSuchUpload"), FailureClass::kNotFound);
  EXPECT_EQ(ClassifyStatus(403, "SignatureDoesNotMatch"), FailureClass::kFail);
  EXPECT_EQ(ClassifyStatus(403, "AccessDenied"), FailureClass::kFail);
}

}  // namespace
}  // namespace dlipkg
