// The DLI v2.0 resources API as a RequestHandler: routes on the raw path (method first, so a
// package may be named "owner" or "jars"), decodes the request, calls the core, encodes the
// answer. Handlers stay thin; every error body comes from api/error_table.
// Thread-safe: Handle runs on many threads at once.
#pragma once

#include <string>
#include <vector>

#include "api/http_types.hpp"
#include "api/json_codec.hpp"
#include "core/package_service.hpp"

namespace dlipkg::api {

struct ApiOptions {
  std::string default_owner = "local";  // owner of what unauthenticated requests create
  std::vector<Module> modules;          // built-in modules shown by the list
};

class ResourcesApi final : public RequestHandler {
 public:
  ResourcesApi(PackageService& service, ApiOptions options);
  Response Handle(const Request& request) override;
  Response Reject(ErrorCode code, std::string message) override;

 private:
  PackageService& service_;
  ApiOptions options_;
};

}  // namespace dlipkg::api
