// libcurl pieces every S3 caller in the adapters shares: RAII handles and SigV4 signing setup
// (S3 XML is in s3_xml.hpp, the retry policy in failure_class.hpp). Used by CurlFetcher (signed
// source fetches) and S3BlobStore.
// Adapter-internal: the only header outside curl's own that names curl types. Pure functions.
#pragma once

#include <curl/curl.h>

#include <memory>
#include <string>
#include <string_view>

#include "adapters/s3/object_stores.hpp"
#include "domain/error.hpp"

namespace dlipkg {

struct CurlDeleter {
  void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
  void operator()(CURLU* url) const { curl_url_cleanup(url); }
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using EasyHandle = std::unique_ptr<CURL, CurlDeleter>;
using UrlHandle = std::unique_ptr<CURLU, CurlDeleter>;
using HeaderList = std::unique_ptr<curl_slist, CurlDeleter>;

// libcurl 7.88 signs with SigV4 only when told the payload hash; this one says the body is not
// hashed (over TLS the transport protects it; a caller that knows the hash may send it instead).
inline constexpr char kUnsignedPayloadHeader[] = "x-amz-content-sha256: UNSIGNED-PAYLOAD";

// curl_global_init once per process, thread-safe. Errors: kInternal.
Result<void> InitCurlOnce();

// libcurl signs each request (CURLOPT_AWS_SIGV4); the caller's duties are a canonical URL
// (CanonicalObjectUrl makes it) and the payload-hash header, which `headers` must carry. Key
// and secret go in separately because a key may contain ':'. `headers` must outlive the
// transfer.
CURLcode SetSigning(CURL* easy, const ObjectStore& store, curl_slist* headers);

}  // namespace dlipkg
