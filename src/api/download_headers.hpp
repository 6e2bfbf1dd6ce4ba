// The HTTP header values of a file-named download (GET|HEAD /v2.0/{p}/files/...): HTTP-date,
// Content-Disposition with a UTF-8 name (RFC 6266/8187), Repr-Digest (RFC 9530), strong ETag
// matching for If-None-Match, and a single byte Range (RFC 9110). Also the path-segment encoder
// presigned URLs are built with. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dlipkg::api {

// "Sun, 06 Nov 1994 08:49:37 GMT" for Unix epoch milliseconds.
std::string HttpDate(std::int64_t epoch_ms);
// attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded name>
std::string ContentDisposition(std::string_view name);
// sha-256=:<base64 of the digest>: from the hex digest.
std::string ReprDigest(std::string_view sha256_hex);
// Whether an If-None-Match value ("*", or a list of entity tags, weak or not) matches `etag`.
bool IfNoneMatchHits(std::string_view header, std::string_view etag);
// Percent-encodes every byte but A-Z a-z 0-9 - . _ ~ (one path segment).
std::string EncodePathSegment(std::string_view text);

struct ByteRange {
  std::int64_t first = 0;
  std::int64_t length = 0;
};
enum class RangeOutcome {
  kIgnore,         // no Range, a malformed or multi-range one, or not "bytes": serve it whole
  kSatisfiable,    // serve `range` with 206
  kUnsatisfiable,  // 416
};
// Parses a Range header against a representation of `size` bytes.
RangeOutcome ParseRange(std::optional<std::string_view> header, std::int64_t size,
                        ByteRange& range);

}  // namespace dlipkg::api
