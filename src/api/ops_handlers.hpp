// The operator's endpoints beside the DLI API: GET /metrics (Prometheus text, optionally behind
// a bearer token) and GET /readyz (whether the metadata and blob stores answer). Plain
// functions of the API options, called by the route table's handlers; thread-safe.
#pragma once

#include "api/http_types.hpp"
#include "api/resources_api.hpp"

namespace dlipkg::api {

// 200 with every metric; 404 when instrumentation is off; 401 (APIGW.0301) without the right
// bearer token when one is configured.
Result<Response> MetricsResponse(const ApiOptions& options, const Request& request);

// 200 {"status": "ok", "checks": {part: "ok"}} when every part answers; otherwise 503 with
// "status": "unavailable" and the failing part's reason (never a path or secret).
Response ReadinessResponse(const ApiOptions& options, const Request& request);

// Counts a synchronous upload's packages for /metrics: stored, or failed (all of them: a
// synchronous upload commits all or nothing). Asynchronous ones are counted by their jobs.
void CountSyncUpload(const ApiOptions& options, const Result<UploadResult>& result,
                     std::size_t paths);

}  // namespace dlipkg::api
