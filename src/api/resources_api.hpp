// The DLI v2.0 resources API as a RequestHandler: routes on the raw path (method first, so a
// package may be named "owner" or "jars"), decodes the request, calls the core, encodes the
// answer. Handlers stay thin; every error body comes from api/error_table. With an
// Authenticator every request but /healthz is authenticated once the project is known, and the
// user owns what it creates; without one, only loopback peers are served (unless told otherwise).
// Thread-safe: Handle runs on many threads at once.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/http_types.hpp"
#include "api/json_codec.hpp"
#include "api/transfer_handlers.hpp"
#include "core/package_service.hpp"
#include "ports/authenticator.hpp"

namespace dlipkg::api {

struct ApiOptions {
  std::string default_owner = "local";  // owner of what unauthenticated requests create
  std::vector<Module> modules;          // built-in modules shown by the list
  // Only without an authenticator: serve non-loopback peers too (--insecure-no-auth), and say
  // so in /healthz.
  bool insecure_no_auth = false;
  TransferOptions transfer;  // direct uploads, downloads and presigned URLs
};

class ResourcesApi final : public RequestHandler {
 public:
  // `authenticator` null: no authentication configured. `grants` null: no presigned URLs and
  // no direct-transfer routes. Both must outlive the API.
  ResourcesApi(PackageService& service, ApiOptions options, Authenticator* authenticator = nullptr,
               UrlGrants* grants = nullptr);
  Response Handle(const Request& request) override;
  Response Reject(ErrorCode code, std::string message) override;
  // Direct uploads (PUT .../content, PUT .../blobs/{sha256}) stream; everything else buffers.
  BodyMode BodyModeFor(std::string_view method, std::string_view target) const override;

 private:
  // Who owns what this request creates: the authenticated user, or the default owner.
  Result<std::string> Authenticate(const Request& request, const std::string& project);
  // The same, with the payload hash a signature of a streamed body covered.
  Result<Identity> Identify(const Request& request, const std::string& project);
  // The direct-transfer routes; nullopt when the request is not one of them.
  std::optional<Result<Response>> RouteTransfer(
      const Request& request, const std::vector<std::string_view>& segments,
      const std::multimap<std::string, std::string>& query);
  // A /files request: a valid presigned signature, or else the usual authentication.
  Result<Identity> AdmitFileRead(const Request& request, const std::string& project,
                                 const std::string& group, const std::string& name,
                                 const std::multimap<std::string, std::string>& query);
  // Without authentication, whether the peer may be served at all.
  Result<void> AdmitUnauthenticatedPeer(const Request& request) const;
  // With authentication, an owner change must name a user the authenticator knows.
  Result<void> CheckKnownUser(const std::string& new_owner);

  PackageService& service_;
  ApiOptions options_;
  Authenticator* authenticator_;
  UrlGrants* grants_;
};

}  // namespace dlipkg::api
