#include "api/router.hpp"

#include <algorithm>
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

// A pattern's segments one by one, as Split(pattern.substr(1), '/') would give them, without
// allocating: every request is matched against every route, so this is on the hot path.
class PatternWalk {
 public:
  explicit PatternWalk(std::string_view pattern) : rest_(pattern.substr(1)) {}
  bool Next(std::string_view& segment) {
    if (done_) return false;
    const auto slash = rest_.find('/');
    segment = rest_.substr(0, slash);
    if (slash == std::string_view::npos)
      done_ = true;
    else
      rest_ = rest_.substr(slash + 1);
    return true;
  }

 private:
  std::string_view rest_;
  bool done_ = false;
};

// True when `a` is more specific than `b` (both match the same path): at the first segment
// where they bind differently, the stronger one wins.
bool MoreSpecific(std::string_view a, std::string_view b) {
  PatternWalk left(a), right(b);
  std::string_view l, r;
  while (left.Next(l) && right.Next(r)) {
    if (Rank(l) != Rank(r)) return Rank(l) > Rank(r);
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
  const std::string_view last = pattern.substr(pattern.rfind('/') + 1);
  const bool catch_all = IsCatchAll(last);
  const std::size_t parts = static_cast<std::size_t>(std::ranges::count(pattern, '/'));
  const std::size_t fixed = parts - (catch_all ? 1 : 0);
  if (catch_all ? segments.size() < fixed : segments.size() != fixed) return false;
  std::vector<std::pair<std::string_view, std::string_view>> found;
  PatternWalk walk(pattern);
  std::string_view part;
  for (std::size_t i = 0; i < fixed && walk.Next(part); ++i) {
    if (IsParam(part)) {
      if (segments[i].empty()) return false;
      if (params != nullptr) found.emplace_back(ParamName(part), segments[i]);
    } else if (part != segments[i]) {
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
    found.emplace_back(ParamName(last), rest);
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
