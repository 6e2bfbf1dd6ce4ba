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

Result<ResourceName> ResourceNameParam(const ApiContext& context, const Call& call) {
  auto decoded = PercentDecode(call.Param("resource_name"));
  if (!decoded) return Fail(ErrorCode::kBadRequest, "The resource name is not validly encoded.");
  return ParseResourceNameIn(context, *decoded);
}

NameForm NameFormOf(const ApiContext& context, std::string_view what) {
  const TextRules* rules = context.options.text_rules;
  if (rules == nullptr) return {};
  return [rules, what](std::string_view text) { return rules->Canonical(text, what); };
}

Result<ResourceName> ParseResourceNameIn(const ApiContext& context, std::string_view text) {
  const TextRules* rules = context.options.text_rules;
  if (rules == nullptr) return ResourceName::Parse(text);
  auto canonical = rules->Canonical(text, "resource name");
  if (!canonical) return std::unexpected(canonical.error());
  return ResourceName::Parse(*canonical);
}

Result<TagList> ParseTagsIn(const ApiContext& context, std::vector<Tag> tags) {
  if (const TextRules* rules = context.options.text_rules) {
    // Bounded like the domain's own rule, before any text is normalized.
    if (tags.size() > kMaxTagsPerRequest) return TagList::Parse(std::move(tags));
    for (auto& tag : tags) {
      auto key = rules->Canonical(tag.key, "tag key");
      if (!key) return std::unexpected(key.error());
      auto value = rules->Canonical(tag.value, "tag value");
      if (!value) return std::unexpected(value.error());
      tag = Tag{std::move(*key), std::move(*value)};
    }
  }
  return TagList::Parse(std::move(tags));
}

Result<std::optional<Sha256Hex>> DeclaredSha(const Call& call) {
  const auto header = call.request.Header("X-Content-Sha256");
  if (!header) return std::nullopt;
  auto sha = Sha256Hex::Parse(*header, "X-Content-Sha256");
  if (!sha) return std::unexpected(sha.error());
  return std::move(*sha);
}

}  // namespace dlipkg::api
