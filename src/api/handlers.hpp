// The handlers the route table (api/routes.cpp) names, grouped by area, each defined in the
// file named beside its group. A handler decodes its request, calls the core once and encodes
// the answer; errors go back as values and become the one error body in ResourcesApi.
// To add a route: declare its handler here, define it in the area's file, add one line to the
// table. Handlers are called from many threads at once and keep no state of their own.
#pragma once

#include "api/route.hpp"

namespace dlipkg::api {

// health_handlers.cpp
Result<Response> Health(const ApiContext& context, const Call& call);

// console_routes.cpp: the web console's static files (no project, no credentials).
Result<Response> RedirectRoot(const ApiContext& context, const Call& call);
Result<Response> RedirectToConsole(const ApiContext& context, const Call& call);
Result<Response> ServeConsole(const ApiContext& context, const Call& call);
// ops_handlers.cpp: for operators. 200 with every metric in the Prometheus text format; 404
// with --metrics=false; 401 without the bearer token when --metrics-token-file is set.
Result<Response> ServeMetrics(const ApiContext& context, const Call& call);
// 200 {"status": "ok", "checks": {part: "ok"}} when every store answers; otherwise 503 with
// "status": "unavailable" and the failing part's reason (never a path or secret).
Result<Response> Readiness(const ApiContext& context, const Call& call);

// resource_handlers.cpp: the DLI v2.0 resources API.
Result<Response> ListResources(const ApiContext& context, const Call& call);
Result<Response> UploadResources(const ApiContext& context, const Call& call);
Result<Response> UploadPyFiles(const ApiContext& context, const Call& call);
Result<Response> UploadJars(const ApiContext& context, const Call& call);
Result<Response> UploadFiles(const ApiContext& context, const Call& call);
Result<Response> ChangeOwner(const ApiContext& context, const Call& call);
Result<Response> ShowResource(const ApiContext& context, const Call& call);
Result<Response> DeleteResource(const ApiContext& context, const Call& call);
Result<Response> DownloadResourceContent(const ApiContext& context, const Call& call);

// transfer_handlers.cpp: direct uploads, staged blobs, /files downloads, presigned URLs.
Result<Response> PutResourceContent(const ApiContext& context, const Call& call);
Result<Response> PutBlob(const ApiContext& context, const Call& call);
Result<Response> ShowBlob(const ApiContext& context, const Call& call);
Result<Response> CommitGroup(const ApiContext& context, const Call& call);
Result<Response> CreateUrls(const ApiContext& context, const Call& call);
Result<Response> DownloadFile(const ApiContext& context, const Call& call);
Result<Response> DownloadGroupFile(const ApiContext& context, const Call& call);

}  // namespace dlipkg::api
