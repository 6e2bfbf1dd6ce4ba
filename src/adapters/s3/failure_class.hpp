// The one failure policy of everything that speaks HTTP to a remote store or source: which
// transport (libcurl) and HTTP failures are worth retrying, which are final, and which mean
// "not there". Used by CurlFetcher (sources, signed or not) and S3BlobStore; each maps the class
// onto its own ErrorCode but never decides retryability itself. Pure functions; thread-safe.
#pragma once

#include <curl/curl.h>

#include <string_view>

namespace dlipkg {

enum class FailureClass {
  kRetry,     // transient: the same request may succeed later (timeouts, resets, 5xx, 429)
  kFail,      // final: retrying cannot help (refused, malformed, unknown host, 4xx)
  kNotFound,  // the object (or bucket) is not there: final, but callers may treat it apart
};

struct TransportFailure {
  FailureClass failure;
  std::string_view cause;  // lower-case, client-safe: "connection refused", "timed out"
};

// A libcurl result other than CURLE_OK. An unlisted code is final, with curl's own text.
TransportFailure ClassifyTransport(CURLcode code);

// An HTTP status that is not the success the caller expected, and the <Code> of an S3 XML error
// body when there is one ("" otherwise): S3 says SlowDown or InternalError with various statuses.
FailureClass ClassifyStatus(long status, std::string_view s3_code = "");

}  // namespace dlipkg
