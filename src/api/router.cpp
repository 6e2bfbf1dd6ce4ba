#include "api/router.hpp"

#include <array>

#include "domain/names.hpp"

namespace dlipkg::api {
namespace {

bool IsParam(std::string_view segment) {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

// "{rest...}": the last segment of a pattern, matching all that is left of the path.
bool IsCatchAll(std::string_view segment) { return IsParam(segment) && segment.ends_with("...}"); }

std::string_view ParamName(std::string_view segment) {
  segment = segment.substr(1, segment.size() - 2);
  return segment.ends_with("...") ? segment.substr(0, segment.size() - 3) : segment;
}

// How strongly a pattern segment binds: a literal over a parameter over a catch-all.
int Rank(std::string_view segment) { return IsCatchAll(segment) ? 0 : IsParam(segment) ? 1 : 2; }

std::vector<std::string_view> PatternSegments(std::string_view pattern) {
  return Split(pattern.substr(1), '/');
}

// True when `a` is more specific than `b` (both match the same path): at the first segment
// where they bind differently, the stronger one wins.
bool MoreSpecific(std::string_view a, std::string_view b) {
  const auto left = PatternSegments(a);
  const auto right = PatternSegments(b);
  for (std::size_t i = 0; i < left.size() && i < right.size(); ++i) {
    if (Rank(left[i]) != Rank(right[i])) return Rank(left[i]) > Rank(right[i]);
  }
  return false;
}

// HEAD is answered by the GET routes (the HTTP layer sends the headers only).
bool MethodServes(std::string_view route_method, std::string_view method) {
  return route_method == method || (method == "HEAD" && route_method == "GET");
}

std::string AllowHeader(const std::vector<const Route*>& on_path) {
  static constexpr std::array<std::string_view, 5> kOrder{"GET", "HEAD", "POST", "PUT", "DELETE"};
  std::string allow;
  for (std::string_view method : kOrder) {
    bool served = false;
    for (const Route* route : on_path) served = served || MethodServes(route->method, method);
    if (!served) continue;
    if (!allow.empty()) allow += ", ";
    allow += method;
  }
  return allow;
}

}  // namespace

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
    // SDK-HMAC sorts the query, so the order of a repeated parameter is not signed: which one
    // counts would be the attacker's choice. No route takes a parameter twice.
    if (target.query.contains(*name))
      return Fail(ErrorCode::kBadRequest,
                  "The query parameter '" + name->substr(0, 64) + "' is given more than once.");
    target.query.emplace(std::move(*name), std::move(*value));
  }
  return target;
}

bool MatchPattern(std::string_view pattern, const std::vector<std::string_view>& segments,
                  std::vector<std::pair<std::string_view, std::string_view>>* params) {
  const auto parts = PatternSegments(pattern);
  const bool catch_all = IsCatchAll(parts.back());
  const std::size_t fixed = parts.size() - (catch_all ? 1 : 0);
  if (catch_all ? segments.size() < fixed : segments.size() != fixed) return false;
  std::vector<std::pair<std::string_view, std::string_view>> found;
  for (std::size_t i = 0; i < fixed; ++i) {
    if (IsParam(parts[i])) {
      if (segments[i].empty()) return false;
      found.emplace_back(ParamName(parts[i]), segments[i]);
    } else if (parts[i] != segments[i]) {
      return false;
    }
  }
  if (catch_all) {
    // The rest of the raw path, '/'s included: the segments are views into one string.
    std::string_view rest;
    if (segments.size() > fixed)
      rest =
          std::string_view(segments[fixed].data(), segments.back().data() + segments.back().size() -
                                                       segments[fixed].data());
    found.emplace_back(ParamName(parts.back()), rest);
  }
  if (params != nullptr) *params = std::move(found);
  return true;
}

RouteMatch MatchRoute(std::span<const Route> routes, std::string_view method,
                      const std::vector<std::string_view>& segments) {
  std::vector<const Route*> on_path;
  const Route* best_for_method = nullptr;
  const Route* best_on_path = nullptr;
  for (const Route& route : routes) {
    if (!MatchPattern(route.pattern, segments, nullptr)) continue;
    on_path.push_back(&route);
    if (best_on_path == nullptr || MoreSpecific(route.pattern, best_on_path->pattern))
      best_on_path = &route;
    if (MethodServes(route.method, method) &&
        (best_for_method == nullptr || MoreSpecific(route.pattern, best_for_method->pattern)))
      best_for_method = &route;
  }
  RouteMatch match;
  match.method_allowed = best_for_method != nullptr;
  match.route = match.method_allowed ? best_for_method : best_on_path;
  if (match.route == nullptr) return match;
  MatchPattern(match.route->pattern, segments, &match.params);
  if (!match.method_allowed) match.allow = AllowHeader(on_path);
  return match;
}

std::string_view Call::Param(std::string_view name) const {
  for (const auto& [key, value] : params)
    if (key == name) return value;
  return {};
}

std::optional<std::string> Call::Query(const std::string& name) const {
  // lower_bound, not find: with a repeated name the first one given counts, deterministically.
  const auto it = target.query.lower_bound(name);
  if (it == target.query.end() || it->first != name) return std::nullopt;
  return it->second;
}

Response JsonResponse(std::string body) {
  Response response;
  response.body = std::move(body);
  return response;
}

Response EmptyResponse() {
  Response response;
  response.content_type = "";
  return response;
}

}  // namespace dlipkg::api
