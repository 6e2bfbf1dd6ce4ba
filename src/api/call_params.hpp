// The request values the handlers share, parsed once into domain types (domain/values.hpp):
// the ?group= query, the {resource_name} segment, and the declared payload hashes. Used by the
// resource and transfer handlers; stateless.
#pragma once

#include <optional>

#include "api/route.hpp"
#include "domain/values.hpp"

namespace dlipkg::api {

// ?group=G: absent or blank means none (an ungrouped package); otherwise a valid group name.
Result<std::optional<GroupName>> GroupParam(const Call& call);

// The {resource_name} segment: decoded once, after routing, then validated, so an encoded
// '/' ("dir%2Fsub.py") is an invalid name, never a second segment. Brought to NFC (NameFormOf).
Result<ResourceName> ResourceNameParam(const ApiContext& context, const Call& call);

// The server's TextRules as the domain takes them, for names of the kind `what` names
// ("resource name", "tag key"); empty when none are configured.
NameForm NameFormOf(const ApiContext& context, std::string_view what);
// A resource name from a request body or a path, through the TextRules, then the domain.
Result<ResourceName> ParseResourceNameIn(const ApiContext& context, std::string_view text);
// Tags through the TextRules (keys and values), then the domain's ValidateTags, so two keys
// that differ only in normalization are duplicates.
Result<TagList> ParseTagsIn(const ApiContext& context, std::vector<Tag> tags);

// X-Content-Sha256, when the client declared the body's hash.
Result<std::optional<Sha256Hex>> DeclaredSha(const Call& call);

}  // namespace dlipkg::api
