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

}  // namespace dlipkg::api
