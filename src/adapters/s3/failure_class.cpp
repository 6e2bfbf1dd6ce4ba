#include "adapters/s3/failure_class.hpp"

#include <algorithm>
#include <iterator>

namespace dlipkg {
namespace {

struct TransportRule {
  CURLcode code;
  FailureClass failure;
  std::string_view cause;
};

// An unknown host name is final: a name that does not resolve is almost always a typo or a
// retired host, and retrying it until an async job's deadline (an hour by default) would only
// hide that. A resolver that is slow rather than wrong ends in CURLE_OPERATION_TIMEDOUT: retried.
constexpr TransportRule kTransportRules[] = {
    {CURLE_COULDNT_RESOLVE_HOST, FailureClass::kFail, "host not found"},
    {CURLE_COULDNT_RESOLVE_PROXY, FailureClass::kFail, "proxy not found"},
    {CURLE_COULDNT_CONNECT, FailureClass::kRetry, "connection refused"},
    {CURLE_OPERATION_TIMEDOUT, FailureClass::kRetry, "timed out"},
    {CURLE_RECV_ERROR, FailureClass::kRetry, "connection lost while receiving"},
    {CURLE_SEND_ERROR, FailureClass::kRetry, "connection lost while sending"},
    {CURLE_PARTIAL_FILE, FailureClass::kRetry, "transfer ended early"},
    {CURLE_GOT_NOTHING, FailureClass::kRetry, "empty reply"},
    {CURLE_HTTP2, FailureClass::kRetry, "HTTP/2 framing error"},
    {CURLE_HTTP2_STREAM, FailureClass::kRetry, "HTTP/2 stream error"},
    {CURLE_SSL_CONNECT_ERROR, FailureClass::kRetry, "TLS handshake failed"},
    {CURLE_PEER_FAILED_VERIFICATION, FailureClass::kFail, "TLS certificate not trusted"},
    {CURLE_URL_MALFORMAT, FailureClass::kFail, "not a valid URL"},
    {CURLE_UNSUPPORTED_PROTOCOL, FailureClass::kFail, "unsupported protocol"},
    {CURLE_TOO_MANY_REDIRECTS, FailureClass::kFail, "too many redirects"},
    {CURLE_FILESIZE_EXCEEDED, FailureClass::kFail, "object too large"},
    {CURLE_OUT_OF_MEMORY, FailureClass::kRetry, "out of memory"},
};

// S3 error codes that say "later" or "not there" whatever the status they came with.
constexpr std::string_view kRetryCodes[] = {"SlowDown", "InternalError", "ServiceUnavailable",
                                            "RequestTimeout", "OperationAborted"};
constexpr std::string_view kNotFoundCodes[] = {"NoSuchKey", "NoSuchBucket", "NoSuchUpload",
                                               "NoSuchVersion"};

}  // namespace

TransportFailure ClassifyTransport(CURLcode code) {
  const auto* rule = std::ranges::find(kTransportRules, code, &TransportRule::code);
  if (rule != std::end(kTransportRules)) return {rule->failure, rule->cause};
  return {FailureClass::kFail, curl_easy_strerror(code)};
}

FailureClass ClassifyStatus(long status, std::string_view s3_code) {
  if (std::ranges::find(kRetryCodes, s3_code) != std::end(kRetryCodes)) return FailureClass::kRetry;
  if (std::ranges::find(kNotFoundCodes, s3_code) != std::end(kNotFoundCodes))
    return FailureClass::kNotFound;
  if (status == 404 || status == 410) return FailureClass::kNotFound;
  if (status == 408 || status == 425 || status == 429) return FailureClass::kRetry;
  // 501 and 505 say the server will never do this; the other 5xx are its passing troubles.
  if (status >= 500 && status <= 599 && status != 501 && status != 505) return FailureClass::kRetry;
  return FailureClass::kFail;
}

}  // namespace dlipkg
