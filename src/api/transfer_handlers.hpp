// Handlers of the direct-transfer extension of the API: streamed uploads of bytes
// (PUT .../resources/{name}/content), staged blobs and whole-group commits of them, file-named
// downloads (GET|HEAD .../files/[{group}/]{name}) and presigned read URLs (POST
// .../resources/urls). Each decodes its request, calls the core once and encodes the answer;
// ResourcesApi routes and authenticates before calling them. Thread-safe, stateless.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "api/http_types.hpp"
#include "core/package_service.hpp"
#include "core/url_grants.hpp"
#include "ports/authenticator.hpp"

namespace dlipkg::api {

// Query parameters of a presigned URL.
inline constexpr std::string_view kUrlExpiresParam = "X-Dli-Expires";
inline constexpr std::string_view kUrlSignatureParam = "X-Dli-Signature";

struct TransferOptions {
  std::int64_t max_object_bytes = 5LL << 30;  // --max-object-size, for direct uploads
  // Scheme and authority of presigned URLs ("https://dlipkg.example.com"); "" takes the
  // request's Host header over http.
  std::string public_url;
};

struct TransferContext {
  PackageService& service;
  UrlGrants& grants;
  const TransferOptions& options;
};

// One routed request: decoded path parameters ("" when the route has none) and who asked.
struct TransferCall {
  const Request& request;
  const std::multimap<std::string, std::string>& query;  // decoded
  std::string project;
  Identity who;
  std::string group;
  std::string name;
  std::string sha256;

  std::optional<std::string> Query(const std::string& key) const;
};

Result<Response> PutResourceContent(const TransferContext& context, const TransferCall& call);
Result<Response> PutBlob(const TransferContext& context, const TransferCall& call);
Result<Response> HeadBlob(const TransferContext& context, const TransferCall& call);
Result<Response> CommitGroup(const TransferContext& context, const TransferCall& call);
Result<Response> CreateUrls(const TransferContext& context, const TransferCall& call);
Result<Response> GetFile(const TransferContext& context, const TransferCall& call);

}  // namespace dlipkg::api
