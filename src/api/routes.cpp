#include "api/routes.hpp"

#include "api/handlers.hpp"

namespace dlipkg::api {
namespace {

// Names the handler once: the function and the name tests and docs show.
#define DLIPKG_ROUTE(method, pattern, handler, access, work) \
  Route { method, pattern, &handler, #handler, access, work }

// One line per route. Order does not matter: precedence is by specificity (api/router.hpp),
// so `{resource_name}` never shadows `owner`, `pyfiles`, `jars` or `files`. GET routes also
// answer HEAD. Keep README.md's and docs/api.md's tables in step (a unit test checks them).
constexpr Access kPublic = Access::kPublic;
constexpr Access kProject = Access::kProject;
constexpr Work kInstant = Work::kInstant;
constexpr Work kStoreRead = Work::kStoreRead;  // the whole listing too: its first batch only
constexpr Work kBlocking = Work::kBlocking;
constexpr Route kRoutes[] = {
    DLIPKG_ROUTE("GET", "/healthz", Health, kPublic, kInstant),
    DLIPKG_ROUTE("GET", "/v2.0/{project_id}/resources", ListResources, kProject, kStoreRead),
    DLIPKG_ROUTE("POST", "/v2.0/{project_id}/resources", UploadResources, kProject, kBlocking),
    DLIPKG_ROUTE("POST", "/v2.0/{project_id}/resources/pyfiles", UploadPyFiles, kProject,
                 kBlocking),
    DLIPKG_ROUTE("POST", "/v2.0/{project_id}/resources/jars", UploadJars, kProject, kBlocking),
    DLIPKG_ROUTE("POST", "/v2.0/{project_id}/resources/files", UploadFiles, kProject, kBlocking),
    DLIPKG_ROUTE("PUT", "/v2.0/{project_id}/resources/owner", ChangeOwner, kProject, kBlocking),
    DLIPKG_ROUTE("GET", "/v2.0/{project_id}/resources/{resource_name}", ShowResource, kProject,
                 kStoreRead),
    DLIPKG_ROUTE("DELETE", "/v2.0/{project_id}/resources/{resource_name}", DeleteResource, kProject,
                 kBlocking),
    DLIPKG_ROUTE("GET", "/v2.0/{project_id}/resources/{resource_name}/content",
                 DownloadResourceContent, kProject, kBlocking),
};

#undef DLIPKG_ROUTE

}  // namespace

std::span<const Route> Routes() { return kRoutes; }

}  // namespace dlipkg::api
