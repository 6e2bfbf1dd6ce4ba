// Handlers of the DLI v2.0 resources API: decode, call PackageService once, encode.
#include <charconv>
#include <cstdint>

#include "api/handlers.hpp"
#include "api/listing_stream.hpp"
#include "domain/names.hpp"

namespace dlipkg::api {
namespace {

// ?group=G: empty means none; otherwise a valid group name.
Result<std::string> GroupParam(const Call& call) {
  auto group = call.Query("group");
  if (!group || Trim(*group).empty()) return std::string();
  return ParseGroupName(*group);
}

// The {resource_name} segment: decoded once, after routing, then validated, so an encoded
// '/' ("dir%2Fsub.py") is an invalid name, never a second segment.
Result<std::string> ResourceNameParam(const Call& call) {
  auto decoded = PercentDecode(call.Param("resource_name"));
  if (!decoded) return Fail(ErrorCode::kBadRequest, "The resource name is not validly encoded.");
  return ParseResourceName(*decoded);
}

Result<std::size_t> SizeParam(const Call& call, const std::string& name, std::size_t max) {
  auto text = call.Query(name);
  std::size_t value = 0;
  const auto* end = text ? text->data() + text->size() : nullptr;
  if (!text || std::from_chars(text->data(), end, value).ptr != end || text->empty() || value > max)
    return Fail(ErrorCode::kBadRequest,
                name + " must be a whole number from 0 to " + std::to_string(max) + ".");
  return value;
}

// ?tags=k=v,k2;k3=v3: every pair must match; a key alone matches any value.
std::vector<ListQuery::TagFilter> TagFilters(std::string_view text) {
  std::vector<ListQuery::TagFilter> filters;
  for (auto item : Split(text, ',')) {
    for (auto pair : Split(item, ';')) {
      pair = Trim(pair);
      if (pair.empty()) continue;
      const auto eq = pair.find('=');
      ListQuery::TagFilter filter{std::string(Trim(pair.substr(0, eq))), std::nullopt};
      if (eq != std::string_view::npos) filter.value = std::string(Trim(pair.substr(eq + 1)));
      filters.push_back(std::move(filter));
    }
  }
  return filters;
}

constexpr std::size_t kMaxTagFilters = 16;

Result<ListQuery> DecodeListQuery(const Call& call) {
  ListQuery query{.project = call.project};
  if (auto kind = call.Query("kind"); kind && !kind->empty()) {
    query.kind = ParseKind(*kind);
    if (!query.kind)
      return Fail(ErrorCode::kBadRequest, "kind must be one of jar, pyFile, file, modelFile.");
  }
  if (auto tags = call.Query("tags")) query.tags = TagFilters(*tags);
  // Each tag is a condition of the store's query: their number is bounded like any input.
  if (query.tags.size() > kMaxTagFilters)
    return Fail(ErrorCode::kBadRequest,
                "tags may name at most " + std::to_string(kMaxTagFilters) + " tags.");
  if (call.target.query.contains("limit")) {
    auto limit = SizeParam(call, "limit", 1000);
    if (!limit) return std::unexpected(limit.error());
    query.limit = *limit;
  }
  if (call.target.query.contains("offset")) {
    auto offset = SizeParam(call, "offset", SIZE_MAX / 2);
    if (!offset) return std::unexpected(offset.error());
    query.offset = *offset;
  }
  if (auto cursor = call.Query("cursor")) {
    query.after = DecodeCursor(*cursor);
    if (!query.after)
      return Fail(ErrorCode::kBadRequest, "cursor must be a next_cursor this server returned.");
  }
  return query;
}

// POST /resources/{pyfiles,jars,files}: the kind comes from the path; the group is replaced.
Result<Response> TypedUpload(const ApiContext& context, const Call& call, PackageKind kind) {
  auto dto = DecodeTypedUpload(call.request.body);
  if (!dto) return std::unexpected(dto.error());
  auto result = context.service.Upload(UploadCommand{.project = call.project,
                                                     .owner = call.user,
                                                     .kind = kind,
                                                     .group = dto->group,
                                                     .mode = GroupMode::kReplace,
                                                     .paths = dto->paths});
  if (!result) return std::unexpected(result.error());
  return JsonResponse(EncodeTypedUploadResponse(*result->group, kind));
}

// With authentication, an owner change must name a user the authenticator knows; without,
// there is no list of users to check against.
Result<void> CheckKnownUser(const ApiContext& context, const std::string& new_owner) {
  if (context.authenticator == nullptr) return {};
  auto name = ParseOwnerName(new_owner);
  if (!name) return std::unexpected(name.error());
  if (!context.authenticator->UserExists(*name))
    return Fail(ErrorCode::kUnknownUser, "No such user. userName:" + *name + ".");
  return {};
}

// The package a {resource_name}[?group=G] route names.
struct PackageRef {
  std::string group;  // "" for an ungrouped package
  std::string name;
};

Result<PackageRef> PackageParams(const Call& call) {
  auto name = ResourceNameParam(call);
  if (!name) return std::unexpected(name.error());
  auto group = GroupParam(call);
  if (!group) return std::unexpected(group.error());
  return PackageRef{std::move(*group), std::move(*name)};
}

}  // namespace

Result<Response> ListResources(const ApiContext& context, const Call& call) {
  auto query = DecodeListQuery(call);
  if (!query) return std::unexpected(query.error());
  if (!query->paged()) {
    // The whole listing may be large: it is written while it is read, a batch at a time.
    auto stream = std::make_unique<ListingStream>(context.service.WalkListing(*query),
                                                  EncodeModules(context.options.modules));
    if (auto started = stream->Start(); !started) return std::unexpected(started.error());
    Response response;
    response.stream = std::move(stream);
    return response;
  }
  auto listing = context.service.List(*query);
  if (!listing) return std::unexpected(listing.error());
  return JsonResponse(EncodeListing(*listing, context.options.modules));
}

Result<Response> UploadResources(const ApiContext& context, const Call& call) {
  auto dto = DecodeUpload(call.request.body);
  if (!dto) return std::unexpected(dto.error());
  auto result = context.service.Upload(UploadCommand{.project = call.project,
                                                     .owner = call.user,
                                                     .kind = dto->kind,
                                                     .group = dto->group,
                                                     .mode = GroupMode::kMerge,
                                                     .paths = dto->paths,
                                                     .tags = dto->tags,
                                                     .is_async = dto->is_async});
  if (!result) return std::unexpected(result.error());
  return JsonResponse(EncodeUploadResponse(*result, call.user, dto->is_async));
}

Result<Response> UploadPyFiles(const ApiContext& context, const Call& call) {
  return TypedUpload(context, call, PackageKind::kPyFile);
}

Result<Response> UploadJars(const ApiContext& context, const Call& call) {
  return TypedUpload(context, call, PackageKind::kJar);
}

Result<Response> UploadFiles(const ApiContext& context, const Call& call) {
  return TypedUpload(context, call, PackageKind::kFile);
}

Result<Response> ChangeOwner(const ApiContext& context, const Call& call) {
  auto dto = DecodeOwnerChange(call.request.body);
  if (!dto) return std::unexpected(dto.error());
  if (auto known = CheckKnownUser(context, dto->new_owner); !known)
    return std::unexpected(known.error());
  auto done = context.service.ChangeOwner(call.project, dto->group_name, dto->resource_name,
                                          dto->new_owner);
  if (!done) return std::unexpected(done.error());
  return JsonResponse(EncodeOwnerChanged());
}

Result<Response> ShowResource(const ApiContext& context, const Call& call) {
  auto ref = PackageParams(call);
  if (!ref) return std::unexpected(ref.error());
  auto package = context.service.Show(call.project, ref->group, ref->name);
  if (!package) return std::unexpected(package.error());
  return JsonResponse(EncodePackage(*package));
}

Result<Response> DeleteResource(const ApiContext& context, const Call& call) {
  auto ref = PackageParams(call);
  if (!ref) return std::unexpected(ref.error());
  auto done = context.service.Delete(call.project, ref->group, ref->name);
  if (!done) return std::unexpected(done.error());
  return EmptyResponse();
}

Result<Response> DownloadResourceContent(const ApiContext& context, const Call& call) {
  auto ref = PackageParams(call);
  if (!ref) return std::unexpected(ref.error());
  auto reader = context.service.OpenContent(call.project, ref->group, ref->name);
  if (!reader) return std::unexpected(reader.error());
  Response response;
  response.content_type = "application/octet-stream";
  response.stream = std::move(*reader);
  return response;
}

}  // namespace dlipkg::api
