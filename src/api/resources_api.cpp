#include "api/resources_api.hpp"

#include <charconv>
#include <map>
#include <string_view>

#include "api/error_table.hpp"
#include "api/listing_stream.hpp"
#include "api/peer_address.hpp"

namespace dlipkg::api {
namespace {

struct Target {
  std::vector<std::string_view> segments;         // raw path segments after the leading '/'
  std::multimap<std::string, std::string> query;  // decoded
};

Result<Target> ParseTarget(std::string_view raw) {
  Target target;
  const auto question = raw.find('?');
  std::string_view path = raw.substr(0, question);
  if (path.empty() || path.front() != '/')
    return Fail(ErrorCode::kNoRoute, "The request target must be an absolute path.");
  target.segments = Split(path.substr(1), '/');
  if (question == std::string_view::npos) return target;
  for (auto pair : Split(raw.substr(question + 1), '&')) {
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    auto name = PercentDecode(pair.substr(0, eq));
    auto value = PercentDecode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    if (!name || !value)
      return Fail(ErrorCode::kBadRequest, "The query string has a malformed percent-encoding.");
    target.query.emplace(std::move(*name), std::move(*value));
  }
  return target;
}

std::optional<std::string> QueryValue(const Target& target, const std::string& name) {
  const auto it = target.query.find(name);
  if (it == target.query.end()) return std::nullopt;
  return it->second;
}

Response Json(std::string body) {
  Response response;
  response.body = std::move(body);
  return response;
}

Response Empty() {
  Response response;
  response.content_type = "";
  return response;
}

// ?group=G: empty means none; otherwise a valid group name.
Result<std::string> GroupParam(const Target& target) {
  auto group = QueryValue(target, "group");
  if (!group || Trim(*group).empty()) return std::string();
  return ParseGroupName(*group);
}

// The {resource_name} segment: decoded once, after routing, then validated, so an encoded
// '/' ("dir%2Fsub.py") is an invalid name, never a second segment.
Result<std::string> ResourceNameParam(std::string_view raw) {
  auto decoded = PercentDecode(raw);
  if (!decoded) return Fail(ErrorCode::kBadRequest, "The resource name is not validly encoded.");
  return ParseResourceName(*decoded);
}

Result<std::size_t> SizeParam(const Target& target, const std::string& name, std::size_t max) {
  auto text = QueryValue(target, name);
  std::size_t value = 0;
  const auto* end = text ? text->data() + text->size() : nullptr;
  if (!text || std::from_chars(text->data(), end, value).ptr != end || text->empty() || value > max)
    return Fail(ErrorCode::kBadRequest,
                name + " must be a whole number from 0 to " + std::to_string(max) + ".");
  return value;
}

constexpr std::size_t kMaxTagFilters = 16;

Result<ListQuery> DecodeListQuery(const std::string& project, const Target& target) {
  ListQuery query{.project = project};
  if (auto kind = QueryValue(target, "kind"); kind && !kind->empty()) {
    query.kind = ParseKind(*kind);
    if (!query.kind)
      return Fail(ErrorCode::kBadRequest, "kind must be one of jar, pyFile, file, modelFile.");
  }
  if (auto tags = QueryValue(target, "tags"); tags) {
    for (auto item : Split(*tags, ',')) {
      for (auto pair : Split(item, ';')) {
        pair = Trim(pair);
        if (pair.empty()) continue;
        const auto eq = pair.find('=');
        ListQuery::TagFilter filter{std::string(Trim(pair.substr(0, eq))), std::nullopt};
        if (eq != std::string_view::npos) filter.value = std::string(Trim(pair.substr(eq + 1)));
        query.tags.push_back(std::move(filter));
      }
    }
    // Each tag is a condition of the store's query: their number is bounded like any input.
    if (query.tags.size() > kMaxTagFilters)
      return Fail(ErrorCode::kBadRequest,
                  "tags may name at most " + std::to_string(kMaxTagFilters) + " tags.");
  }
  if (target.query.contains("limit")) {
    auto limit = SizeParam(target, "limit", 1000);
    if (!limit) return std::unexpected(limit.error());
    query.limit = *limit;
  }
  if (target.query.contains("offset")) {
    auto offset = SizeParam(target, "offset", SIZE_MAX / 2);
    if (!offset) return std::unexpected(offset.error());
    query.offset = *offset;
  }
  if (auto cursor = QueryValue(target, "cursor"); cursor) {
    query.after = DecodeCursor(*cursor);
    if (!query.after)
      return Fail(ErrorCode::kBadRequest, "cursor must be a next_cursor this server returned.");
  }
  return query;
}

}  // namespace

ResourcesApi::ResourcesApi(PackageService& service, ApiOptions options,
                           Authenticator* authenticator)
    : service_(service),
      options_(std::move(options)),
      authenticator_(authenticator),
      modules_json_(EncodeModules(options_.modules)) {}

Result<void> ResourcesApi::AdmitUnauthenticatedPeer(const Request& request) const {
  if (authenticator_ != nullptr || options_.insecure_no_auth || IsLoopback(request.remote_address))
    return {};
  return Fail(ErrorCode::kForbidden,
              "This server has no authentication configured and serves loopback clients only.");
}

Result<std::string> ResourcesApi::Authenticate(const Request& request, const std::string& project) {
  if (authenticator_ == nullptr) return options_.default_owner;  // credentials are ignored
  auto identity = authenticator_->Authenticate(
      AuthRequest{request.method, request.target, &request.headers, request.body, project});
  if (!identity) return std::unexpected(identity.error());
  return std::move(identity->user);
}

Result<void> ResourcesApi::CheckKnownUser(const std::string& new_owner) {
  if (authenticator_ == nullptr) return {};  // no list of users to check against
  auto name = ParseOwnerName(new_owner);
  if (!name) return std::unexpected(name.error());
  if (!authenticator_->UserExists(*name))
    return Fail(ErrorCode::kUnknownUser, "No such user. userName:" + *name + ".");
  return {};
}

// The whole listing may be large: it is written while it is read, a batch at a time.
Result<Response> ResourcesApi::StreamListing(const ListQuery& query) {
  auto stream = std::make_unique<ListingStream>(service_.WalkListing(query), modules_json_);
  if (auto started = stream->Start(); !started) return std::unexpected(started.error());
  Response response;
  response.stream = std::move(stream);
  return response;
}

bool ResourcesApi::IsQuick(const Request& request) const {
  if (request.method != "GET") return false;
  if (request.target == "/healthz") return true;
  if (!options_.quick_reads) return false;
  auto target = ParseTarget(request.target);
  if (!target) return true;  // answered with an error at once
  const auto& seg = target->segments;
  if (seg.size() < 3 || seg[0] != "v2.0" || seg[2] != "resources") return true;  // no route
  if (seg.size() == 4) return true;                                              // show one package
  // A listing page; the whole listing is written while it is read, on the pool.
  return seg.size() == 3 && (target->query.contains("limit") || target->query.contains("offset") ||
                             target->query.contains("cursor"));
}

Response ResourcesApi::Reject(ErrorCode code, std::string message) {
  return ErrorResponse(Error{code, std::move(message)}, "");
}

Response ResourcesApi::Handle(const Request& request) {
  // Each route returns a Result<Response>; errors become the one error body here.
  const auto route = [&]() -> Result<Response> {
    auto target = ParseTarget(request.target);
    if (!target) return std::unexpected(target.error());
    const auto& seg = target->segments;
    const auto& method = request.method;
    if (seg.size() == 1 && seg[0] == "healthz" && method == "GET")
      return Json(authenticator_ == nullptr && options_.insecure_no_auth
                      ? R"({"status":"ok","auth":"disabled"})"
                      : R"({"status":"ok"})");
    if (auto admitted = AdmitUnauthenticatedPeer(request); !admitted)
      return std::unexpected(admitted.error());
    // v2.0 / {project_id} / resources [/ {resource_name} [/ content]]
    if (seg.size() < 3 || seg.size() > 5 || seg[0] != "v2.0" || seg[1].empty() ||
        seg[2] != "resources")
      return Fail(ErrorCode::kNoRoute, "No such API: " + method + " " +
                                           std::string(request.target.substr(0, 200)) + ".");
    auto project = ParseProjectId(seg[1]);
    if (!project) return std::unexpected(project.error());
    auto authenticated = Authenticate(request, *project);
    if (!authenticated) return std::unexpected(authenticated.error());
    const std::string& owner = *authenticated;

    if (seg.size() == 3 && method == "GET") {
      auto query = DecodeListQuery(*project, *target);
      if (!query) return std::unexpected(query.error());
      if (!query->paged()) return StreamListing(*query);
      auto listing = service_.List(*query);
      if (!listing) return std::unexpected(listing.error());
      return Json(EncodeListing(*listing, options_.modules));
    }
    if (seg.size() == 3 && method == "POST") {
      auto dto = DecodeUpload(request.body);
      if (!dto) return std::unexpected(dto.error());
      auto result = service_.Upload(UploadCommand{.project = *project,
                                                  .owner = owner,
                                                  .kind = dto->kind,
                                                  .group = dto->group,
                                                  .mode = GroupMode::kMerge,
                                                  .paths = dto->paths,
                                                  .tags = dto->tags,
                                                  .is_async = dto->is_async});
      if (!result) return std::unexpected(result.error());
      return Json(EncodeUploadResponse(*result, owner, dto->is_async));
    }
    if (seg.size() == 4 && method == "POST") {
      static const std::map<std::string_view, PackageKind> kTyped{{"pyfiles", PackageKind::kPyFile},
                                                                  {"jars", PackageKind::kJar},
                                                                  {"files", PackageKind::kFile}};
      if (auto kind = kTyped.find(seg[3]); kind != kTyped.end()) {
        auto dto = DecodeTypedUpload(request.body);
        if (!dto) return std::unexpected(dto.error());
        auto result = service_.Upload(UploadCommand{.project = *project,
                                                    .owner = owner,
                                                    .kind = kind->second,
                                                    .group = dto->group,
                                                    .mode = GroupMode::kReplace,
                                                    .paths = dto->paths});
        if (!result) return std::unexpected(result.error());
        return Json(EncodeTypedUploadResponse(*result->group, kind->second));
      }
    }
    if (seg.size() == 4 && method == "PUT" && seg[3] == "owner") {
      auto dto = DecodeOwnerChange(request.body);
      if (!dto) return std::unexpected(dto.error());
      if (auto known = CheckKnownUser(dto->new_owner); !known)
        return std::unexpected(known.error());
      auto done =
          service_.ChangeOwner(*project, dto->group_name, dto->resource_name, dto->new_owner);
      if (!done) return std::unexpected(done.error());
      return Json(EncodeOwnerChanged());
    }
    const bool package_route = (seg.size() == 4 && (method == "GET" || method == "DELETE")) ||
                               (seg.size() == 5 && method == "GET" && seg[4] == "content");
    if (package_route) {
      auto name = ResourceNameParam(seg[3]);
      if (!name) return std::unexpected(name.error());
      auto group = GroupParam(*target);
      if (!group) return std::unexpected(group.error());
      if (seg.size() == 5) {
        auto reader = service_.OpenContent(*project, *group, *name);
        if (!reader) return std::unexpected(reader.error());
        Response response;
        response.content_type = "application/octet-stream";
        response.stream = std::move(*reader);
        return response;
      }
      if (method == "DELETE") {
        auto done = service_.Delete(*project, *group, *name);
        if (!done) return std::unexpected(done.error());
        return Empty();
      }
      auto package = service_.Show(*project, *group, *name);
      if (!package) return std::unexpected(package.error());
      return Json(EncodePackage(*package));
    }
    return Fail(ErrorCode::kNoRoute,
                "No such API: " + method + " " + std::string(request.target.substr(0, 200)) + ".");
  };
  auto response = route();
  if (!response) return ErrorResponse(response.error(), request.request_id);
  return std::move(*response);
}

}  // namespace dlipkg::api
