// What the direct-transfer handlers (api/transfer_handlers.cpp, declared in api/handlers.hpp:
// streamed uploads, staged blobs, /files downloads, presigned URLs) share with ResourcesApi:
// the query parameters of a presigned URL. Constants; thread-safe.
#pragma once

#include <string_view>

#include "api/route.hpp"

namespace dlipkg::api {

// Query parameters of a presigned URL (checked by ResourcesApi for kProjectOrPresigned routes).
inline constexpr std::string_view kUrlExpiresParam = "X-Dli-Expires";
inline constexpr std::string_view kUrlSignatureParam = "X-Dli-Signature";
// The handlers themselves are declared with all the others in api/handlers.hpp.

}  // namespace dlipkg::api
