#include "api/call_params.hpp"

#include "domain/names.hpp"

namespace dlipkg::api {

Result<std::optional<GroupName>> GroupParam(const Call& call) {
  auto group = call.Query("group");
  if (!group || Trim(*group).empty()) return std::nullopt;
  auto name = GroupName::Parse(*group);
  if (!name) return std::unexpected(name.error());
  return std::move(*name);
}

Result<ResourceName> ResourceNameParam(const Call& call) {
  auto decoded = PercentDecode(call.Param("resource_name"));
  if (!decoded) return Fail(ErrorCode::kBadRequest, "The resource name is not validly encoded.");
  return ResourceName::Parse(*decoded);
}

Result<std::optional<Sha256Hex>> DeclaredSha(const Call& call) {
  const auto header = call.request.Header("X-Content-Sha256");
  if (!header) return std::nullopt;
  auto sha = Sha256Hex::Parse(*header, "X-Content-Sha256");
  if (!sha) return std::unexpected(sha.error());
  return std::move(*sha);
}

}  // namespace dlipkg::api
