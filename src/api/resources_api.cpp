#include "api/resources_api.hpp"

#include <cctype>

#include <string_view>

#include "api/call_params.hpp"
#include "api/error_table.hpp"
#include "api/ops_handlers.hpp"
#include "api/peer_address.hpp"
#include "api/routes.hpp"
#include "api/transfer_handlers.hpp"
#include "domain/names.hpp"
#include "domain/values.hpp"

namespace dlipkg::api {
namespace {

std::string Shown(const Request& request) {
  return request.method + " " + std::string(std::string_view(request.target).substr(0, 200));
}

}  // namespace

ResourcesApi::ResourcesApi(PackageService& service, ApiOptions options,
                           Authenticator* authenticator, UrlGrants* grants)
    : options_(std::move(options)), context_{service, options_, authenticator, grants} {}

BodyMode ResourcesApi::BodyModeFor(std::string_view method, std::string_view target) const {
  auto parsed = ParseTarget(target);
  if (!parsed) return BodyMode::kBuffer;
  const RouteMatch match = MatchRoute(Routes(), method, parsed->segments);
  return match.route != nullptr && match.method_allowed ? match.route->body : BodyMode::kBuffer;
}

Result<bool> ResourcesApi::AdmitPresigned(const Call& call, const std::string& project) const {
  auto admitted = CheckPresigned(call, project);
  if (!admitted) CountPresignRefusal(options_, admitted.error());
  return admitted;
}

Result<bool> ResourcesApi::CheckPresigned(const Call& call, const std::string& project) const {
  const auto expires = call.Query(std::string(kUrlExpiresParam));
  const auto signature = call.Query(std::string(kUrlSignatureParam));
  if (!expires && !signature) return false;
  if (!expires || !signature || context_.grants == nullptr)
    return Fail(ErrorCode::kForbidden, "The presigned URL is malformed: a parameter is missing.");
  auto group = PercentDecode(call.Param("group"));
  auto name = PercentDecode(call.Param("resource_name"));
  if (!group || !name) return Fail(ErrorCode::kForbidden, "The presigned URL is malformed.");
  auto granted = context_.grants->Check(project, *group, *name, *expires, *signature);
  if (!granted) return std::unexpected(granted.error());
  return true;
}

Result<void> ResourcesApi::AdmitUnauthenticatedPeer(const Request& request) const {
  if (context_.authenticator != nullptr || options_.insecure_no_auth ||
      IsLoopback(request.remote_address))
    return {};
  return Fail(ErrorCode::kForbidden,
              "This server has no authentication configured and serves loopback clients only.");
}

Result<Identity> ResourcesApi::Authenticate(const Request& request,
                                            const std::string& project) const {
  if (context_.authenticator == nullptr)  // credentials are ignored
    return Identity{options_.default_owner, std::nullopt};
  return context_.authenticator->Authenticate(
      AuthRequest{.method = request.method,
                  .raw_target = request.target,
                  .headers = &request.headers,
                  .body = request.body,
                  .project = project,
                  .body_streamed = request.body_stream != nullptr});
}

// Without credentials nothing in a request proves who sent it, so a page on another site that
// the user's browser visits could POST to this loopback server with a form or a no-cors fetch.
// Those can only send no Content-Type or the CORS-safelisted ones; any other type makes the
// browser ask first (a preflight this server never grants). So a POST must name another type
// (the API's own is application/json). With credentials the token or signature headers do this.
Result<void> ResourcesApi::RefuseCrossSiteForm(const Request& request) const {
  if (context_.authenticator != nullptr || request.method != "POST") return {};
  std::string type(request.Header("Content-Type").value_or(""));
  type = std::string(Trim(type.substr(0, type.find(';'))));
  for (auto& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!type.empty() && type != "application/x-www-form-urlencoded" &&
      type != "multipart/form-data" && type != "text/plain")
    return {};
  return Fail(ErrorCode::kBadRequest,
              "A POST needs Content-Type: application/json (a form or a cross-site page cannot "
              "send it, and this server has no credentials to tell them apart).");
}

Result<void> ResourcesApi::Admit(const Request& request, const RouteMatch& match,
                                 Call& call) const {
  // An unknown path is refused to a peer the server would not serve at all, as any other.
  if (match.route == nullptr || match.route->access != Access::kPublic) {
    if (auto admitted = AdmitUnauthenticatedPeer(request); !admitted) return admitted;
  }
  if (match.route == nullptr || match.route->access == Access::kPublic) return {};
  auto project = ProjectId::Parse(call.Param("project_id"));
  if (!project) return std::unexpected(project.error());
  // A resource name in the path is judged before the credentials: a malformed '%' or a
  // character no name may have is 400 with or without them (the Node.js SDK signs such a path
  // in a form of its own, which would otherwise turn it into a 401).
  if (const auto raw = call.Param("resource_name"); !raw.empty()) {
    auto decoded = PercentDecode(raw);
    if (!decoded) return Fail(ErrorCode::kBadRequest, "The resource name is not validly encoded.");
    if (auto name = ParseResourceNameIn(context_, *decoded); !name)
      return std::unexpected(name.error());
  }
  if (match.route->access == Access::kProjectOrPresigned && match.method_allowed) {
    auto presigned = AdmitPresigned(call, project->str());
    if (!presigned) return std::unexpected(presigned.error());
    if (*presigned) {
      call.project = std::move(*project);
      return {};
    }
  }
  if (auto same_site = RefuseCrossSiteForm(request); !same_site) return same_site;
  auto identity = Authenticate(request, project->str());
  if (!identity) return std::unexpected(identity.error());
  call.project = std::move(*project);
  call.user = std::move(identity->user);
  call.signed_payload_sha256 = std::move(identity->signed_payload_sha256);
  return {};
}

Result<Response> ResourcesApi::Dispatch(const Request& request, std::string_view& route) {
  auto target = ParseTarget(request.target);
  if (!target) return std::unexpected(target.error());
  const RouteMatch match = MatchRoute(Routes(), request.method, target->segments);
  if (match.route != nullptr) route = match.route->pattern;
  return DispatchMatched(request, *target, match);
}

Result<Response> ResourcesApi::DispatchMatched(const Request& request, const Target& target,
                                               const RouteMatch& match) {
  Call call{.request = request, .target = target, .params = match.params};
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

Response ResourcesApi::Answer(const Request& request, Result<Response> response,
                              std::string_view route) {
  Response answer =
      response ? std::move(*response) : ErrorResponse(response.error(), request.request_id);
  // The pattern labels the request in /metrics, errors included: a bounded set, unlike paths.
  answer.route = route;
  return answer;
}

Response ResourcesApi::Handle(const Request& request) {
  std::string_view route;
  auto response = Dispatch(request, route);
  return Answer(request, std::move(response), route);
}

std::optional<Response> ResourcesApi::HandleIfQuick(const Request& request) {
  auto target = ParseTarget(request.target);
  if (!target) return Answer(request, std::unexpected(target.error()), {});
  const RouteMatch match = MatchRoute(Routes(), request.method, target->segments);
  if (!IsQuickMatch(match)) return std::nullopt;
  const std::string_view route = match.route != nullptr ? match.route->pattern : "";
  return Answer(request, DispatchMatched(request, *target, match), route);
}

bool ResourcesApi::IsQuick(const Request& request) const {
  auto target = ParseTarget(request.target);
  if (!target) return true;
  return IsQuickMatch(MatchRoute(Routes(), request.method, target->segments));
}

bool ResourcesApi::IsQuickMatch(const RouteMatch& match) const {
  if (match.route == nullptr || !match.method_allowed) return true;
  switch (match.route->work) {
    case Work::kInstant:
      return true;
    case Work::kStoreRead:
      return options_.quick_reads;
    case Work::kBlobOpen:
      return options_.quick_reads && options_.quick_blob_opens;
    case Work::kBlocking:
      return false;
  }
  return false;
}

Response ResourcesApi::Reject(ErrorCode code, std::string message, const std::string& request_id) {
  return ErrorResponse(Error{code, std::move(message)}, request_id);
}

}  // namespace dlipkg::api
