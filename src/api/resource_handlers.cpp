// Handlers of the DLI v2.0 resources API: decode, call PackageService once, encode.
#include <charconv>
#include <cstdint>

#include "api/call_params.hpp"
#include "api/handlers.hpp"
#include "api/listing_stream.hpp"
#include "api/ops_handlers.hpp"
#include "domain/names.hpp"
#include "domain/values.hpp"

namespace dlipkg::api {
namespace {

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

// A search text in the form stored names are in, so that it finds them however it was typed;
// text the rules refuse is searched as written (no stored name holds it).
std::string SearchForm(const ApiContext& context, std::string text) {
  const TextRules* rules = context.options.text_rules;
  if (rules == nullptr) return text;
  auto canonical = rules->Canonical(text, "search text");
  return canonical ? std::move(*canonical) : std::move(text);
}

Result<ListQuery> DecodeListQuery(const ApiContext& context, const Call& call) {
  ListQuery query{.project = call.Project()};
  if (auto kind = call.Query("kind"); kind && !kind->empty()) {
    query.kind = ParseKind(*kind);
    if (!query.kind)
      return Fail(ErrorCode::kBadRequest, "kind must be one of jar, pyFile, file, modelFile.");
  }
  if (auto tags = call.Query("tags")) query.tags = TagFilters(*tags);
  if (auto name = call.Query("name")) {
    if (name->size() > 256) return Fail(ErrorCode::kBadRequest, "name must be at most 256 bytes.");
    query.name_contains = SearchForm(context, std::move(*name));
  }
  // Each tag is a condition of the store's query: their number is bounded like any input.
  if (query.tags.size() > kMaxTagFilters)
    return Fail(ErrorCode::kBadRequest,
                "tags may name at most " + std::to_string(kMaxTagFilters) + " tags.");
  for (auto& filter : query.tags) {
    filter.key = SearchForm(context, std::move(filter.key));
    if (filter.value) filter.value = SearchForm(context, std::move(*filter.value));
  }
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

// The validated parts of an upload body, in the order their errors are reported: the group,
// then the tags, then each path (its name, then duplicates).
struct UploadParts {
  std::optional<GroupName> group;
  TagList tags;
  SourceList sources;
};

Result<UploadParts> ParseUploadParts(const ApiContext& context,
                                     const std::optional<std::string>& group, std::vector<Tag> tags,
                                     const std::vector<std::string>& paths) {
  std::optional<GroupName> group_name;
  if (group) {
    auto parsed = GroupName::Parse(*group);
    if (!parsed) return std::unexpected(parsed.error());
    group_name = std::move(*parsed);
  }
  auto tag_list = ParseTagsIn(context, std::move(tags));
  if (!tag_list) return std::unexpected(tag_list.error());
  auto sources = SourceList::Parse(paths, NameFormOf(context, "resource name"));
  if (!sources) return std::unexpected(sources.error());
  return UploadParts{std::move(group_name), std::move(*tag_list), std::move(*sources)};
}

// POST /resources/{pyfiles,jars,files}: the kind comes from the path; the group is replaced.
Result<Response> TypedUpload(const ApiContext& context, const Call& call, PackageKind kind) {
  auto dto = DecodeTypedUpload(call.request.body);
  if (!dto) return std::unexpected(dto.error());
  auto parts = ParseUploadParts(context, dto->group, {}, dto->paths);
  if (!parts) return std::unexpected(parts.error());
  auto result = context.service.Upload(UploadCommand{.project = call.Project(),
                                                     .owner = call.user,
                                                     .kind = kind,
                                                     .group = std::move(parts->group),
                                                     .mode = GroupMode::kReplace,
                                                     .sources = std::move(parts->sources)});
  CountSyncUpload(context.options, result, dto->paths.size());
  if (!result) return std::unexpected(result.error());
  return JsonResponse(EncodeTypedUploadResponse(*result->group, kind));
}

// The new owner of an owner change. With authentication it must be a user the authenticator
// knows; without, there is no list of users to check against.
Result<OwnerName> NewOwner(const ApiContext& context, const std::string& text) {
  auto name = OwnerName::Parse(text);
  if (!name) return std::unexpected(name.error());
  if (context.authenticator != nullptr && !context.authenticator->UserExists(name->str()))
    return Fail(ErrorCode::kUnknownUser, "No such user. userName:" + name->str() + ".");
  return name;
}

Result<OwnerTarget> ParseOwnerTarget(const ApiContext& context, const OwnerChangeRequest& dto) {
  OwnerTarget target;
  if (dto.group_name) {
    auto group = GroupName::Parse(*dto.group_name);
    if (!group) return std::unexpected(group.error());
    target.group = std::move(*group);
  }
  if (dto.resource_name) {
    auto name = ParseResourceNameIn(context, *dto.resource_name);
    if (!name) return std::unexpected(name.error());
    target.name = std::move(*name);
  }
  return target;
}

// The package a {resource_name}[?group=G] route names.
Result<PackageId> PackageParams(const ApiContext& context, const Call& call) {
  auto name = ResourceNameParam(context, call);
  if (!name) return std::unexpected(name.error());
  auto group = GroupParam(call);
  if (!group) return std::unexpected(group.error());
  return PackageId{call.Project(), std::move(*group), std::move(*name)};
}

}  // namespace

Result<Response> ListResources(const ApiContext& context, const Call& call) {
  auto query = DecodeListQuery(context, call);
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
  auto parts = ParseUploadParts(context, dto->group, std::move(dto->tags), dto->paths);
  if (!parts) return std::unexpected(parts.error());
  auto result = context.service.Upload(UploadCommand{.project = call.Project(),
                                                     .owner = call.user,
                                                     .kind = dto->kind,
                                                     .group = std::move(parts->group),
                                                     .mode = GroupMode::kMerge,
                                                     .sources = std::move(parts->sources),
                                                     .tags = std::move(parts->tags),
                                                     .is_async = dto->is_async});
  if (!dto->is_async) CountSyncUpload(context.options, result, dto->paths.size());
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
  auto owner = NewOwner(context, dto->new_owner);
  if (!owner) return std::unexpected(owner.error());
  auto target = ParseOwnerTarget(context, *dto);
  if (!target) return std::unexpected(target.error());
  auto done = context.service.ChangeOwner(call.Project(), *target, *owner);
  if (!done) return std::unexpected(done.error());
  return JsonResponse(EncodeOwnerChanged());
}

Result<Response> ShowResource(const ApiContext& context, const Call& call) {
  auto id = PackageParams(context, call);
  if (!id) return std::unexpected(id.error());
  auto package = context.service.Show(*id);
  if (!package) return std::unexpected(package.error());
  return JsonResponse(EncodePackage(*package));
}

Result<Response> DeleteResource(const ApiContext& context, const Call& call) {
  auto id = PackageParams(context, call);
  if (!id) return std::unexpected(id.error());
  auto done = context.service.Delete(*id);
  if (!done) return std::unexpected(done.error());
  return EmptyResponse();
}

Result<Response> DownloadResourceContent(const ApiContext& context, const Call& call) {
  auto id = PackageParams(context, call);
  if (!id) return std::unexpected(id.error());
  auto reader = context.service.OpenContent(*id);
  if (!reader) return std::unexpected(reader.error());
  Response response;
  response.content_type = "application/octet-stream";
  response.stream = std::move(*reader);
  return response;
}

}  // namespace dlipkg::api
