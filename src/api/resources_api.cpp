#include "api/resources_api.hpp"

#include <string_view>

#include "api/error_table.hpp"
#include "api/peer_address.hpp"
#include "api/routes.hpp"
#include "domain/names.hpp"

namespace dlipkg::api {
namespace {

std::string Shown(const Request& request) {
  return request.method + " " + std::string(std::string_view(request.target).substr(0, 200));
}

}  // namespace

ResourcesApi::ResourcesApi(PackageService& service, ApiOptions options,
                           Authenticator* authenticator)
    : options_(std::move(options)), context_{service, options_, authenticator} {}

Result<void> ResourcesApi::AdmitUnauthenticatedPeer(const Request& request) const {
  if (context_.authenticator != nullptr || options_.insecure_no_auth ||
      IsLoopback(request.remote_address))
    return {};
  return Fail(ErrorCode::kForbidden,
              "This server has no authentication configured and serves loopback clients only.");
}

Result<std::string> ResourcesApi::Authenticate(const Request& request,
                                               const std::string& project) const {
  if (context_.authenticator == nullptr) return options_.default_owner;  // credentials ignored
  auto identity = context_.authenticator->Authenticate(
      AuthRequest{request.method, request.target, &request.headers, request.body, project});
  if (!identity) return std::unexpected(identity.error());
  return std::move(identity->user);
}

Result<void> ResourcesApi::Admit(const Request& request, const RouteMatch& match,
                                 Call& call) const {
  // An unknown path is refused to a peer the server would not serve at all, as any other.
  if (match.route == nullptr || match.route->access != Access::kPublic) {
    if (auto admitted = AdmitUnauthenticatedPeer(request); !admitted) return admitted;
  }
  if (match.route == nullptr || match.route->access != Access::kProject) return {};
  auto project = ParseProjectId(call.Param("project_id"));
  if (!project) return std::unexpected(project.error());
  auto user = Authenticate(request, *project);
  if (!user) return std::unexpected(user.error());
  call.project = std::move(*project);
  call.user = std::move(*user);
  return {};
}

Result<Response> ResourcesApi::Dispatch(const Request& request) {
  auto target = ParseTarget(request.target);
  if (!target) return std::unexpected(target.error());
  RouteMatch match = MatchRoute(Routes(), request.method, target->segments);
  Call call{.request = request, .target = *target, .params = match.params};
  if (auto admitted = Admit(request, match, call); !admitted)
    return std::unexpected(admitted.error());
  if (match.route == nullptr)
    return Fail(ErrorCode::kNoRoute, "No such API: " + Shown(request) + ".");
  if (!match.method_allowed) {
    Response refused = ErrorResponse(
        Error{ErrorCode::kMethodNotAllowed,
              "No such API: " + Shown(request) + ". This path accepts " + match.allow + "."},
        request.request_id);
    refused.headers.emplace_back("Allow", match.allow);
    return refused;
  }
  return match.route->handler(context_, call);
}

Response ResourcesApi::Handle(const Request& request) {
  auto response = Dispatch(request);
  if (!response) return ErrorResponse(response.error(), request.request_id);
  return std::move(*response);
}

bool ResourcesApi::IsQuick(const Request& request) const {
  auto target = ParseTarget(request.target);
  if (!target) return true;
  const RouteMatch match = MatchRoute(Routes(), request.method, target->segments);
  if (match.route == nullptr || !match.method_allowed) return true;
  switch (match.route->work) {
    case Work::kInstant:
      return true;
    case Work::kStoreRead:
      return options_.quick_reads;
    case Work::kBlocking:
      return false;
  }
  return false;
}

Response ResourcesApi::Reject(ErrorCode code, std::string message) {
  return ErrorResponse(Error{code, std::move(message)}, "");
}

}  // namespace dlipkg::api
