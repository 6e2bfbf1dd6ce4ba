#include "adapters/s3/s3_request.hpp"

#include <mutex>

namespace dlipkg {

Result<void> InitCurlOnce() {
  static std::once_flag once;
  static CURLcode result = CURLE_OK;
  std::call_once(once, [] { result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (result != CURLE_OK) return Fail(ErrorCode::kInternal, "libcurl failed to initialise");
  return {};
}

CURLcode SetSigning(CURL* easy, const ObjectStore& store, curl_slist* headers) {
  const std::string provider = "aws:amz:" + store.region + ":s3";
  for (const CURLcode code : {curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers),
                              curl_easy_setopt(easy, CURLOPT_AWS_SIGV4, provider.c_str()),
                              curl_easy_setopt(easy, CURLOPT_USERNAME, store.access_key.c_str()),
                              curl_easy_setopt(easy, CURLOPT_PASSWORD, store.secret_key.c_str())}) {
    if (code != CURLE_OK) return code;
  }
  return CURLE_OK;
}

}  // namespace dlipkg
