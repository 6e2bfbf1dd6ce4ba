// Matching a request against the route table: splits the target, finds the route for a
// method and path, and says whether an unmatched request is a 404 (unknown path) or a 405
// (known path, other methods). Used by ResourcesApi::Handle. Pure functions; thread-safe.
//
// Patterns: "/" followed by segments, each a literal, a parameter "{name}" (one non-empty
// segment) or, last only, a catch-all "{name...}" (the rest of the path, maybe empty, '/'s
// included). Literals compare raw and case-sensitive; values stay percent-encoded (a handler
// decodes once, so "%2F" never becomes a separator).
// Precedence: among the routes of the request's method whose pattern matches, the most
// specific wins: compared segment by segment from the left, a literal beats a parameter, which
// beats a catch-all. So `PUT /resources/owner` is the owner change while `GET /resources/owner`
// shows a package named "owner". HEAD uses the GET routes. A path that some route matches but
// none of the method is a 405; a path no route matches is a 404.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/route.hpp"

namespace dlipkg::api {

// "/a/b?x=1&y=%20" -> segments {"a", "b"}, query {x: "1", y: " "}. Errors: kNoRoute (not an
// absolute path), kBadRequest (malformed percent-encoding in the query).
Result<Target> ParseTarget(std::string_view raw);

struct RouteMatch {
  // The route to run; when the method matched none, the most specific route of the path (its
  // access decides who may learn the 405). Null: no route has this path (404).
  const Route* route = nullptr;
  bool method_allowed = false;
  std::string allow;  // the methods the path accepts, for a 405's Allow header: "GET, HEAD"
  std::vector<std::pair<std::string_view, std::string_view>> params;  // of `route`'s pattern
};

RouteMatch MatchRoute(std::span<const Route> routes, std::string_view method,
                      const std::vector<std::string_view>& segments);

// Whether `pattern` matches `segments`; fills `params` ({name} -> raw segment) when it does.
bool MatchPattern(std::string_view pattern, const std::vector<std::string_view>& segments,
                  std::vector<std::pair<std::string_view, std::string_view>>* params);

}  // namespace dlipkg::api
