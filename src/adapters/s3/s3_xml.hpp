// The S3 XML replies dlipkg reads (ListObjectsV2, ListMultipartUploads,
// InitiateMultipartUploadResult, Error), parsed with Boost.PropertyTree instead of by hand, so
// entities, namespaces, attributes and element order are the parser's business. Used by
// S3BlobStore and CurlFetcher (the <Code> of a store's error). Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "domain/error.hpp"

namespace dlipkg {

struct S3Object {
  std::string key;
  std::string last_modified;  // RFC 3339, as the store wrote it
};

// One page of a ListObjectsV2 reply.
struct ObjectListing {
  std::vector<S3Object> objects;
  bool truncated = false;
  std::string next_continuation_token;  // "" on the last page
};

struct S3Upload {
  std::string key;
  std::string upload_id;
  std::string initiated;  // RFC 3339
};

// One page of a ListMultipartUploads reply.
struct UploadListing {
  std::vector<S3Upload> uploads;
  bool truncated = false;
  std::string next_key_marker;
  std::string next_upload_id_marker;
};

// Errors (all kInternal, naming the reply, never its text): not XML, or not the expected root.
Result<ObjectListing> ParseListObjects(std::string_view xml);
Result<UploadListing> ParseListUploads(std::string_view xml);
// The UploadId of an InitiateMultipartUploadResult; an error too when it is missing or empty.
Result<std::string> ParseUploadId(std::string_view xml);

// The <Code> of an S3 <Error> reply ("SignatureDoesNotMatch"), or "" when the body is not one.
// Only a short word is taken: the rest of the body is the store's, not ours to repeat.
std::string S3ErrorCode(std::string_view xml);

}  // namespace dlipkg
