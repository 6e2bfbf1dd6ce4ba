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
// '/' ("dir%2Fsub.py") is an invalid name, never a second segment.
Result<ResourceName> ResourceNameParam(const Call& call);

// X-Content-Sha256, when the client declared the body's hash.
Result<std::optional<Sha256Hex>> DeclaredSha(const Call& call);

}  // namespace dlipkg::api
