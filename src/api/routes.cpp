#include "api/routes.hpp"

#include "api/handlers.hpp"

namespace dlipkg::api {
namespace {

// Names the handler once: the function and the name tests and docs show.
#define DLIPKG_ROUTE(method, pattern, handler, access) \
  Route { method, pattern, &handler, #handler, access }
#define DLIPKG_STREAMED_ROUTE(method, pattern, handler, access) \
  Route { method, pattern, &handler, #handler, access, BodyMode::kStream }

// One line per route. Order does not matter: precedence is by specificity (api/router.hpp),
// so `{resource_name}` never shadows `owner`, `pyfiles`, `jars` or `files`. GET routes also
// answer HEAD. Keep README.md's and docs/api.md's tables in step (a unit test checks them).
constexpr Access kPublic = Access::kPublic;
constexpr Access kProject = Access::kProject;
constexpr Access kPresigned = Access::kProjectOrPresigned;
constexpr Route kRoutes[] = {
    DLIPKG_ROUTE("GET", "/healthz", Health, kPublic),
    DLIPKG_ROUTE("GET", "/", RedirectRoot, kPublic),
    DLIPKG_ROUTE("GET", "/console", RedirectToConsole, kPublic),
    DLIPKG_ROUTE("GET", "/console/{file...}", ServeConsole, kPublic),
    DLIPKG_ROUTE("GET", "/readyz", Readiness, kPublic),
    DLIPKG_ROUTE("GET", "/metrics", ServeMetrics, kPublic),
    DLIPKG_ROUTE("GET", "/v2.0/{project_id}/resources", ListResources, kProject),
    DLIPKG_ROUTE("POST", "/v2.0/{project_id}/resources", UploadResources, kProject),
    DLIPKG_ROUTE("POST", "/v2.0/{project_id}/resources/pyfiles", UploadPyFiles, kProject),
    DLIPKG_ROUTE("POST", "/v2.0/{project_id}/resources/jars", UploadJars, kProject),
    DLIPKG_ROUTE("POST", "/v2.0/{project_id}/resources/files", UploadFiles, kProject),
    DLIPKG_ROUTE("PUT", "/v2.0/{project_id}/resources/owner", ChangeOwner, kProject),
    DLIPKG_ROUTE("GET", "/v2.0/{project_id}/resources/{resource_name}", ShowResource, kProject),
    DLIPKG_ROUTE("DELETE", "/v2.0/{project_id}/resources/{resource_name}", DeleteResource,
                 kProject),
    DLIPKG_ROUTE("GET", "/v2.0/{project_id}/resources/{resource_name}/content",
                 DownloadResourceContent, kProject),
    // Direct transfer (docs/api.md): uploads of bytes stream their bodies.
    DLIPKG_STREAMED_ROUTE("PUT", "/v2.0/{project_id}/resources/{resource_name}/content",
                          PutResourceContent, kProject),
    DLIPKG_STREAMED_ROUTE("PUT", "/v2.0/{project_id}/blobs/{sha256}", PutBlob, kProject),
    DLIPKG_ROUTE("GET", "/v2.0/{project_id}/blobs/{sha256}", ShowBlob, kProject),
    DLIPKG_ROUTE("POST", "/v2.0/{project_id}/resources/commit", CommitGroup, kProject),
    DLIPKG_ROUTE("POST", "/v2.0/{project_id}/resources/urls", CreateUrls, kProject),
    DLIPKG_ROUTE("GET", "/v2.0/{project_id}/files/{resource_name}", DownloadFile, kPresigned),
    DLIPKG_ROUTE("GET", "/v2.0/{project_id}/files/{group}/{resource_name}", DownloadGroupFile,
                 kPresigned),
};

#undef DLIPKG_ROUTE
#undef DLIPKG_STREAMED_ROUTE

}  // namespace

std::span<const Route> Routes() { return kRoutes; }

}  // namespace dlipkg::api
