// The DLI wire format: request DTOs decoded from JSON (errors name the bad field) and response
// bodies encoded from core records with the exact keys and JSON types of docs/api.md.
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/package_service.hpp"
#include "core/url_grants.hpp"
#include "domain/error.hpp"
#include "domain/records.hpp"

namespace dlipkg::api {

// POST /resources/{pyfiles,jars,files}
struct TypedUploadRequest {
  std::vector<std::string> paths;
  std::string group;
};
// POST /resources
struct UploadRequest {
  std::vector<std::string> paths;
  PackageKind kind = PackageKind::kFile;
  std::optional<std::string> group;
  bool is_async = false;
  std::vector<Tag> tags;
};
// PUT /resources/owner
struct OwnerChangeRequest {
  std::string new_owner;
  std::optional<std::string> group_name;
  std::optional<std::string> resource_name;
};

// POST /resources/urls
struct UrlsRequest {
  std::optional<std::string> group;
  std::optional<std::vector<std::string>> resource_names;
  std::optional<std::int64_t> expires_in;  // seconds
};
// POST /resources/commit
struct GroupCommitRequest {
  GroupName group;
  std::vector<StagedPackage> packages;
};
// One entry of the POST /resources/urls answer.
struct SignedUrl {
  UrlGrant grant;
  std::string url;
};

// A built-in module shown in the list (configured, read-only).
struct Module {
  std::string name;
  std::string type;  // a package kind spelling
  std::string description;
  std::vector<std::string> resources;
};

// The --modules file: [{"module_name", "module_type", "description"?, "resources": [names]}].
Result<std::vector<Module>> DecodeModules(std::string_view text);

Result<TypedUploadRequest> DecodeTypedUpload(std::string_view body);
Result<UploadRequest> DecodeUpload(std::string_view body);
Result<OwnerChangeRequest> DecodeOwnerChange(std::string_view body);
Result<UrlsRequest> DecodeUrlsRequest(std::string_view body);
Result<GroupCommitRequest> DecodeGroupCommit(std::string_view body);

// 3.1 answer: the group with description/module_name/module_type.
std::string EncodeTypedUploadResponse(const GroupRecord& group, PackageKind kind);
// 3.2 answer: the whole group after a merge, or resource_names for ungrouped packages.
std::string EncodeUploadResponse(const UploadResult& result, const std::string& owner,
                                 bool is_async);
std::string EncodePackage(const PackageRecord& package);
std::string EncodeListing(const Listing& listing, const std::vector<Module>& modules);
// Pieces of EncodeListing's answer, for writing it as it is read (api/listing_stream.hpp):
// one group as in "groups" (also the answer of a group commit, as POST /resources answers a
// grouped upload), and the "modules" array.
std::string EncodeGroup(const GroupRecord& group);
// EncodeGroup and EncodePackage appended to `out` (the same bytes, written in place).
void AppendGroup(const GroupRecord& group, std::string& out);
void AppendPackage(const PackageRecord& package, std::string& out);
std::string EncodeModules(const std::vector<Module>& modules);
// The keyset cursor of a paged listing (an opaque token to clients) and back; nullopt when
// `token` is not one this server gave out.
std::string EncodeCursor(const ListPosition& position);
std::optional<ListPosition> DecodeCursor(std::string_view token);
std::string EncodeOwnerChanged();
// {"urls": [{"resource_name", "resource_type", "group_name", "sha256", "url", "expires_at"}]}
// (expires_at in Unix epoch milliseconds, like the other times of the API).
std::string EncodeUrls(const std::vector<SignedUrl>& urls);

}  // namespace dlipkg::api
