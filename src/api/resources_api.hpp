// The DLI v2.0 resources API as a RequestHandler: routes on the raw path (method first, so a
// package may be named "owner" or "jars"), decodes the request, calls the core, encodes the
// answer. Handlers stay thin; every error body comes from api/error_table. With an
// Authenticator every request but /healthz is authenticated once the project is known, and the
// user owns what it creates; without one, only loopback peers are served (unless told otherwise).
// Thread-safe: Handle runs on many threads at once.
#pragma once

#include <string>
#include <vector>

#include "api/http_types.hpp"
#include "api/json_codec.hpp"
#include "core/package_service.hpp"
#include "ports/authenticator.hpp"
#include "ports/metrics.hpp"
#include "ports/readiness_probe.hpp"

namespace dlipkg::api {

// A part GET /readyz asks whether it can serve ("metadata store", "blob store").
struct ReadinessCheck {
  std::string name;
  ReadinessProbe* probe = nullptr;  // null: not checked
};

struct ApiOptions {
  std::string default_owner = "local";  // owner of what unauthenticated requests create
  std::vector<Module> modules;          // built-in modules shown by the list
  // Only without an authenticator: serve non-loopback peers too (--insecure-no-auth), and say
  // so in /healthz.
  bool insecure_no_auth = false;
  // GET /metrics renders this (null: instrumentation off, /metrics answers 404); with a
  // metrics_token the request must carry "Authorization: Bearer <token>".
  Metrics* metrics = nullptr;
  std::string metrics_token;
  std::vector<ReadinessCheck> readiness;  // GET /readyz
};

class ResourcesApi final : public RequestHandler {
 public:
  // `authenticator` null: no authentication configured. It must outlive the API.
  ResourcesApi(PackageService& service, ApiOptions options, Authenticator* authenticator = nullptr);
  Response Handle(const Request& request) override;
  Response Reject(ErrorCode code, std::string message, const std::string& request_id) override;

 private:
  // Who owns what this request creates: the authenticated user, or the default owner.
  Result<std::string> Authenticate(const Request& request, const std::string& project);
  // Without authentication, whether the peer may be served at all.
  Result<void> AdmitUnauthenticatedPeer(const Request& request) const;
  // With authentication, an owner change must name a user the authenticator knows.
  Result<void> CheckKnownUser(const std::string& new_owner);

  PackageService& service_;
  ApiOptions options_;
  Authenticator* authenticator_;
};

}  // namespace dlipkg::api
