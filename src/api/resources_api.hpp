// The server's RequestHandler: matches each request against the one route table
// (api/routes.cpp, precedence in api/router.hpp), applies the route's access rule, runs its
// handler (api/handlers.hpp) and turns every error into the one error body (api/error_table).
// Unknown paths are 404, known paths with another method 405 with an Allow header.
// Access: public routes (/healthz) are open to all; project routes are authenticated for their
// project when an Authenticator is configured (the user owns what it creates); without one,
// only loopback peers are served (unless told otherwise) as the default owner.
// Thread-safe: Handle runs on many threads at once.
#pragma once

#include <string>
#include <string_view>

#include "api/http_types.hpp"
#include "api/route.hpp"
#include "api/router.hpp"
#include "core/package_service.hpp"
#include "ports/authenticator.hpp"

namespace dlipkg::api {

class ResourcesApi final : public RequestHandler {
 public:
  // `authenticator` null: no authentication configured; `grants` null: no presigned URLs.
  // Both must outlive the API.
  ResourcesApi(PackageService& service, ApiOptions options, Authenticator* authenticator = nullptr,
               UrlGrants* grants = nullptr);
  Response Handle(const Request& request) override;
  Response Reject(ErrorCode code, std::string message, const std::string& request_id) override;
  // The matched route's body mode: direct uploads stream, everything else is buffered.
  BodyMode BodyModeFor(std::string_view method, std::string_view target) const override;
  // By the route's Work; requests refused at once (no route, 405, bad target) are quick.
  bool IsQuick(const Request& request) const override;
  // IsQuick and Handle with one parse of the target and one match of the route table.
  std::optional<Response> HandleIfQuick(const Request& request) override;

 private:
  // Sets `route` to the matched route's pattern, if any, even when the answer is an error.
  Result<Response> Dispatch(const Request& request, std::string_view& route);
  // Dispatch of a target already parsed and matched.
  Result<Response> DispatchMatched(const Request& request, const Target& target,
                                   const RouteMatch& match);
  // The answer to a request, from what Dispatch returned.
  static Response Answer(const Request& request, Result<Response> response, std::string_view route);
  // IsQuick of a target that parsed, by its match.
  bool IsQuickMatch(const RouteMatch& match) const;
  // The route's access rule; fills call.project and call.user for project routes.
  Result<void> Admit(const Request& request, const RouteMatch& match, Call& call) const;
  // Who owns what this request creates: the authenticated user, or the default owner; for a
  // streamed body, also the payload hash its signature covered.
  Result<Identity> Authenticate(const Request& request, const std::string& project) const;
  // A kProjectOrPresigned route: a presigned URL's grant when the query carries one.
  Result<bool> AdmitPresigned(const Call& call, const std::string& project) const;
  // AdmitPresigned before counting a refusal for /metrics.
  Result<bool> CheckPresigned(const Call& call, const std::string& project) const;
  // Without authentication, whether the peer may be served at all.
  Result<void> AdmitUnauthenticatedPeer(const Request& request) const;
  // Without authentication, a POST a cross-site form could send is refused (CSRF).
  Result<void> RefuseCrossSiteForm(const Request& request) const;

  ApiOptions options_;
  ApiContext context_;
};

}  // namespace dlipkg::api
