// The one table from dlipkg error codes to HTTP status and DLI error_code (docs/api.md, "Errors"),
// and the error body built from it. Every error response of the server comes from here.
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "api/http_types.hpp"
#include "domain/error.hpp"

namespace dlipkg::api {

struct ErrorMapping {
  int http_status;
  std::string_view error_code;  // "DLI.0001", "APIGW.0301", ...
};

ErrorMapping MapError(ErrorCode code);

// {"error_code": ..., "error_msg": ..., "request_id": ...} (request_id left out when "").
Response ErrorResponse(const Error& error, const std::string& request_id);

}  // namespace dlipkg::api
