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

namespace dlipkg::api {

struct ApiOptions {
  std::string default_owner = "local";  // owner of what unauthenticated requests create
  std::vector<Module> modules;          // built-in modules shown by the list
  // Only without an authenticator: serve non-loopback peers too (--insecure-no-auth), and say
  // so in /healthz.
  bool insecure_no_auth = false;
  // Reads from the store are quick (a local SQLite file): show, listing pages and /healthz
  // may run on the I/O threads. Not for a networked store, whose reads can wait for a
  // connection timeout.
  bool quick_reads = false;
};

class ResourcesApi final : public RequestHandler {
 public:
  // `authenticator` null: no authentication configured. It must outlive the API.
  ResourcesApi(PackageService& service, ApiOptions options, Authenticator* authenticator = nullptr);
  Response Handle(const Request& request) override;
  Response Reject(ErrorCode code, std::string message) override;
  bool IsQuick(const Request& request) const override;

 private:
  // Who owns what this request creates: the authenticated user, or the default owner.
  Result<std::string> Authenticate(const Request& request, const std::string& project);
  // Without authentication, whether the peer may be served at all.
  Result<void> AdmitUnauthenticatedPeer(const Request& request) const;
  // With authentication, an owner change must name a user the authenticator knows.
  Result<void> CheckKnownUser(const std::string& new_owner);
  Result<Response> StreamListing(const ListQuery& query);

  PackageService& service_;
  ApiOptions options_;
  Authenticator* authenticator_;
  const std::string modules_json_;  // the listing's "modules", encoded once
};

}  // namespace dlipkg::api
