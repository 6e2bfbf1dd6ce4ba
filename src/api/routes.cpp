#include "api/routes.hpp"

#include "api/handlers.hpp"

namespace dlipkg::api {
namespace {

// Names the handler once: the function and the name tests and docs show.
#define DLIPKG_ROUTE(method, pattern, handler, access, work) \
  Route { method, pattern, &handler, #handler, access, work }
#define DLIPKG_STREAMED_ROUTE(method, pattern, handler, access) \
  Route { method, pattern, &handler, #handler, access, Work::kBlocking, BodyMode::kStream }

// One line per route. Order does not matter: precedence is by specificity (api/router.hpp),
// so `{resource_name}` never shadows `owner`, `pyfiles`, `jars` or `files`. GET routes also
// answer HEAD. Keep README.md's and docs/api.md's tables in step (a unit test checks them).
constexpr Access kPublic = Access::kPublic;
constexpr Access kProject = Access::kProject;
constexpr Access kPresigned = Access::kProjectOrPresigned;
constexpr Work kInstant = Work::kInstant;
constexpr Work kStoreRead = Work::kStoreRead;  // the whole listing too: its first batch only
constexpr Work kBlobOpen = Work::kBlobOpen;
constexpr Work kBlocking = Work::kBlocking;
constexpr Route kRoutes[] = {
    DLIPKG_ROUTE("GET", "/healthz", Health, kPublic, kInstant),
    // The console's files are embedded in the binary: no I/O.
    DLIPKG_ROUTE("GET", "/", RedirectRoot, kPublic, kInstant),
    DLIPKG_ROUTE("GET", "/console", RedirectToConsole, kPublic, kInstant),
    DLIPKG_ROUTE("GET", "/console/{file...}", ServeConsole, kPublic, kInstant),
    // Asks every store (a database, maybe an S3 endpoint over the network): the handler pool.
    DLIPKG_ROUTE("GET", "/readyz", Readiness, kPublic, kBlocking),
    // Serialises the in-memory counters: no store, no I/O.
    DLIPKG_ROUTE("GET", "/metrics", ServeMetrics, kPublic, kInstant),
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
    // Downloads only open the blob: the HTTP layer reads its bytes (on the pool, unless a small
    // file is already in memory).
    DLIPKG_ROUTE("GET", "/v2.0/{project_id}/resources/{resource_name}/content",
                 DownloadResourceContent, kProject, kBlobOpen),
    DLIPKG_ROUTE("GET", "/v2.0/{project_id}/files/{resource_name}", DownloadFile, kPresigned,
                 kBlobOpen),
    DLIPKG_ROUTE("GET", "/v2.0/{project_id}/files/{group}/{resource_name}", DownloadGroupFile,
                 kPresigned, kBlobOpen),
    // Everything below writes package bytes or reads the blob store: the handler pool.
    // Direct transfer (docs/api.md): uploads of bytes stream their bodies.
    DLIPKG_STREAMED_ROUTE("PUT", "/v2.0/{project_id}/resources/{resource_name}/content",
                          PutResourceContent, kProject),
    DLIPKG_STREAMED_ROUTE("PUT", "/v2.0/{project_id}/blobs/{sha256}", PutBlob, kProject),
    DLIPKG_ROUTE("GET", "/v2.0/{project_id}/blobs/{sha256}", ShowBlob, kProject, kBlocking),
    DLIPKG_ROUTE("POST", "/v2.0/{project_id}/resources/commit", CommitGroup, kProject, kBlocking),
    DLIPKG_ROUTE("POST", "/v2.0/{project_id}/resources/urls", CreateUrls, kProject, kBlocking),
};

#undef DLIPKG_ROUTE
#undef DLIPKG_STREAMED_ROUTE

}  // namespace

std::span<const Route> Routes() { return kRoutes; }

}  // namespace dlipkg::api
