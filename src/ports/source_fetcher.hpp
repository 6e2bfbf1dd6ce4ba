// Copies a source object (http(s)://, file://, obs:// and s3://) into a sink, streaming.
// Applies the server's source policy (schemes, hosts and addresses, redirects, size, timeouts).
// Blocks for the whole transfer; safe to call from many threads at once.
#pragma once

#include <cstdint>
#include <string_view>

#include "domain/error.hpp"
#include "ports/byte_sink.hpp"

namespace dlipkg {

class SourceFetcher {
 public:
  virtual ~SourceFetcher() = default;
  // Streams the object at `url` into `sink` and returns the number of bytes written.
  // Errors (each message names the URL, without credentials, and the cause):
  //  - kBadRequest: the URL is malformed or refused by the policy (scheme, host, address,
  //    redirect to another host, file outside the allowed roots, no object store for a bucket);
  //  - kSourceUnavailable: the object could not be had (404/403, connection refused, too large,
  //    timeout, 5xx); `retryable` is true for timeouts, resets, 5xx and 429;
  //  - whatever the sink returned (from Write or Cancelled), unchanged.
  virtual Result<std::int64_t> Fetch(std::string_view url, ByteSink& sink) = 0;
};

}  // namespace dlipkg
