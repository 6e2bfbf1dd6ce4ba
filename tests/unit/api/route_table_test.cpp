// The route table walked whole: every route reachable by its own method and path, words of the
// API still usable as package names, unknown paths 404, known paths with another method 405
// with an Allow header, HEAD answered like GET; and the README's and docs/api.md's API tables
// checked against the table, so neither can drift from what the server answers.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <map>
#include <regex>
#include <set>

#include "api/handlers.hpp"
#include "api/resources_api.hpp"
#include "api/router.hpp"
#include "api/routes.hpp"
#include "domain/names.hpp"
#include "unit/api/fake_core.hpp"

namespace dlipkg::api {
namespace {

namespace json = boost::json;

const std::set<std::string> kMethods{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};

// A concrete path for a pattern: each {param} replaced by a sample value.
std::string SamplePath(std::string_view pattern) {
  // {group} and {sha256} name the group and the bytes HeadAnswersWhereverGetDoes uploads.
  static const std::map<std::string, std::string> kSamples{
      {"{project_id}", "p1"},
      {"{resource_name}", "a.py"},
      {"{group}", "g"},
      {"{sha256}", testing::FakeBlobStore::Key("bytes of a.py")},
      {"{file...}", "app.js"}};
  std::string path;
  for (auto segment : Split(pattern.substr(1), '/')) {
    const auto sample = kSamples.find(std::string(segment));
    path += "/" + (sample != kSamples.end()   ? sample->second
                   : segment.starts_with("{") ? std::string("x")
                                              : std::string(segment));
  }
  return path;
}

std::string Shape(std::string_view pattern) {
  return std::regex_replace(std::string(pattern), std::regex("\\{[^}]*\\}"), "{}");
}

class RouteTableTest : public ::testing::Test {
 protected:
  Response Call(std::string method, std::string target, std::string body = "") {
    Request request{.method = std::move(method),
                    .target = std::move(target),
                    .body = std::move(body),
                    .remote_address = "127.0.0.1",
                    .request_id = "rid"};
    // As every client sends it (without credentials a POST must name a non-form type).
    request.headers.emplace_back("Content-Type", "application/json");
    return api_.Handle(request);
  }
  static std::string Code(const Response& response) {
    // The console's files are not JSON; only JSON answers carry an error code.
    if (response.body.empty() || !response.content_type.starts_with("application/json")) return "";
    const auto body = json::parse(response.body);
    return body.is_object() && body.as_object().contains("error_code")
               ? std::string(body.at("error_code").as_string())
               : "";
  }
  static std::string Header(const Response& response, std::string_view name) {
    for (const auto& [key, value] : response.headers)
      if (key == name) return value;
    return "";
  }
  // An ungrouped package uploaded through POST /resources under the name `name`.
  void UploadNamed(const std::string& name) {
    core_.fetcher.Serve("http://src/" + name, "bytes of " + name);
    const auto r = Call("POST", "/v2.0/p1/resources",
                        R"({"paths": ["http://src/)" + name + R"("], "kind": "file"})");
    ASSERT_EQ(r.status, 200) << r.body;
  }

  FakeCore core_;
  NullMetrics metrics_;  // /metrics is a route only while instrumentation is on
  ResourcesApi api_{core_.service, ApiOptions{.metrics = &metrics_}};
};

// The router's rules on a table of its own, so they hold whatever the server's table holds.
Result<Response> Dummy(const ApiContext&, const Call&) { return EmptyResponse(); }
constexpr Route kSynthetic[] = {
    {"GET", "/a/{x}/c", &Dummy, "ParamThenLiteral", Access::kPublic},
    {"GET", "/a/b/{y}", &Dummy, "LiteralThenParam", Access::kPublic},
    {"GET", "/a/{rest...}", &Dummy, "CatchAll", Access::kPublic},
    {"PUT", "/a/b/c", &Dummy, "AllLiteral", Access::kPublic},
    {"GET", "/", &Dummy, "Root", Access::kPublic},
};

std::string Matched(std::string_view method, std::string_view path) {
  const auto segments = Split(path.substr(1), '/');
  const RouteMatch match = MatchRoute(kSynthetic, method, segments);
  if (match.route == nullptr) return "404";
  if (!match.method_allowed) return "405 " + match.allow;
  std::string out(match.route->handler_name);
  for (const auto& [name, value] : match.params)
    out += " " + std::string(name) + "=" + std::string(value);
  return out;
}

TEST(Router, TheMostSpecificPatternWinsLeftToRight) {
  // At the first segment where they differ, a literal beats a parameter beats a catch-all.
  EXPECT_EQ(Matched("GET", "/a/b/c"), "LiteralThenParam y=c");
  EXPECT_EQ(Matched("HEAD", "/a/b/c"), "LiteralThenParam y=c");
  EXPECT_EQ(Matched("PUT", "/a/b/c"), "AllLiteral");
  EXPECT_EQ(Matched("GET", "/a/z/c"), "ParamThenLiteral x=z");
  EXPECT_EQ(Matched("GET", "/a/z/d"), "CatchAll rest=z/d");
  EXPECT_EQ(Matched("GET", "/a/%2F/c"), "ParamThenLiteral x=%2F");
  EXPECT_EQ(Matched("GET", "/a"), "CatchAll rest=");
  EXPECT_EQ(Matched("GET", "/a/"), "CatchAll rest=");
  EXPECT_EQ(Matched("GET", "/a/b//c"), "CatchAll rest=b//c");
  EXPECT_EQ(Matched("GET", "/"), "Root");
  // Parameters never match an empty segment.
  EXPECT_EQ(Matched("GET", "/a//c"), "CatchAll rest=/c");
  EXPECT_EQ(Matched("POST", "/a/b/c"), "405 GET, HEAD, PUT");
  EXPECT_EQ(Matched("DELETE", "/"), "405 GET, HEAD");
  EXPECT_EQ(Matched("GET", "/b"), "404");
  EXPECT_EQ(Matched("GET", "/A/b/c"), "404");
}

TEST(Router, ParsesTheTargetOnce) {
  auto target = ParseTarget("/v2.0/p1/resources/a%20b.py?group=g%31&x&tags=k%3Dv");
  ASSERT_TRUE(target);
  EXPECT_EQ(target->segments,
            (std::vector<std::string_view>{"v2.0", "p1", "resources", "a%20b.py"}));
  EXPECT_EQ(target->query.find("group")->second, "g1");
  // Issue 15: a repeated parameter is refused (its order is not covered by the signature).
  const auto repeated = ParseTarget("/v2.0/p1/resources/a.py?group=g&group=h");
  ASSERT_FALSE(repeated);
  EXPECT_EQ(repeated.error().code, ErrorCode::kBadRequest);
  EXPECT_NE(repeated.error().message.find("'group' is given more than once"), std::string::npos);
  EXPECT_EQ(target->query.find("tags")->second, "k=v");
  EXPECT_EQ(target->query.find("x")->second, "");
  EXPECT_EQ(ParseTarget("/a?b=%zz").error().code, ErrorCode::kBadRequest);
  EXPECT_EQ(ParseTarget("a/b").error().code, ErrorCode::kNoRoute);
  EXPECT_EQ(ParseTarget("").error().code, ErrorCode::kNoRoute);
}

TEST(RouteTable, IsWellFormed) {
  std::set<std::string> names;
  std::set<std::pair<std::string, std::string>> shapes;
  for (const Route& route : Routes()) {
    SCOPED_TRACE(route.pattern);
    EXPECT_TRUE(route.pattern.starts_with("/"));
    EXPECT_TRUE(route.method == "GET" || route.method == "POST" || route.method == "PUT" ||
                route.method == "DELETE")
        << route.method << " (HEAD follows GET by itself)";
    EXPECT_NE(route.handler, nullptr);
    EXPECT_TRUE(names.insert(std::string(route.handler_name)).second) << route.handler_name;
    // Two routes of one method and one shape could both match a path with equal precedence.
    EXPECT_TRUE(shapes.emplace(std::string(route.method), Shape(route.pattern)).second);
    const bool has_project = route.pattern.find("{project_id}") != std::string_view::npos;
    EXPECT_EQ(has_project, route.access != Access::kPublic);
  }
}

TEST_F(RouteTableTest, EveryRouteIsReachedByItsMethodAndPath) {
  for (const Route& route : Routes()) {
    const std::string path = SamplePath(route.pattern);
    SCOPED_TRACE(std::string(route.method) + " " + path);
    std::vector<std::string_view> segments = Split(std::string_view(path).substr(1), '/');
    const RouteMatch match = MatchRoute(Routes(), route.method, segments);
    ASSERT_EQ(match.route, &route) << (match.route ? match.route->handler_name : "none");
    EXPECT_TRUE(match.method_allowed);
    // And through the API: whatever the handler answers, it is not the router's refusal.
    EXPECT_NE(Code(Call(std::string(route.method), path)), "APIGW.0101");
  }
}

TEST_F(RouteTableTest, WordsOfTheApiStayUsableAsPackageNames) {
  for (const std::string name : {"owner", "jars", "pyfiles", "files", "content"}) {
    SCOPED_TRACE(name);
    UploadNamed(name);
    const auto shown = Call("GET", "/v2.0/p1/resources/" + name);
    ASSERT_EQ(shown.status, 200) << shown.body;
    EXPECT_EQ(json::parse(shown.body).at("resource_name"), name.c_str());
    const auto content = Call("GET", "/v2.0/p1/resources/" + name + "/content");
    ASSERT_EQ(content.status, 200);
    ASSERT_TRUE(content.stream);
    EXPECT_EQ(content.stream->Size(), static_cast<std::int64_t>(("bytes of " + name).size()));
    EXPECT_EQ(Call("HEAD", "/v2.0/p1/resources/" + name).status, 200);
    EXPECT_EQ(Call("DELETE", "/v2.0/p1/resources/" + name).status, 200);
    EXPECT_EQ(Code(Call("GET", "/v2.0/p1/resources/" + name)), "DLI.0002");
  }
  // The literal routes keep their meaning beside the packages of the same names.
  const auto typed =
      Call("POST", "/v2.0/p1/resources/jars", R"({"paths": ["http://src/a.py"], "group": "g"})");
  ASSERT_EQ(typed.status, 200) << typed.body;
  EXPECT_EQ(json::parse(typed.body).at("module_type"), "jar");
  const auto owner =
      Call("PUT", "/v2.0/p1/resources/owner", R"({"new_owner": "alice", "group_name": "g"})");
  ASSERT_EQ(owner.status, 200) << owner.body;
  EXPECT_EQ(json::parse(Call("GET", "/v2.0/p1/resources/a.py?group=g").body).at("owner"), "alice");
}

TEST_F(RouteTableTest, UnknownPathsAre404) {
  for (const char* path :
       {"/consoles", "/v2.0", "/v2.0/p1", "/v2.0/p1/nothing", "/v2.0/p1/Resources",
        "/v2.0//resources", "/v3/p1/resources", "/v2.0/p1/resources/",
        "/v2.0/p1/resources/a.py/content/x", "/v2.0/p1/resources/a.py/other",
        "/v2.0/p1/resources//content", "/healthz/x", "/v2.0/p1/resources/a.py/content/"}) {
    for (const std::string& method : kMethods) {
      const auto response = Call(method, path);
      EXPECT_EQ(response.status, 404) << method << " " << path;
      EXPECT_EQ(Code(response), "APIGW.0101") << method << " " << path;
    }
  }
  EXPECT_EQ(Call("GET", "relative").status, 404);
}

TEST_F(RouteTableTest, AKnownPathWithAnotherMethodIs405WithAllow) {
  // Written out, so a change to what a path accepts is a visible change to this test.
  const std::map<std::string, std::string> allow{
      {"/healthz", "GET, HEAD"},
      {"/v2.0/p1/resources", "GET, HEAD, POST"},
      {"/v2.0/p1/resources/owner", "GET, HEAD, PUT, DELETE"},
      {"/v2.0/p1/resources/jars", "GET, HEAD, POST, DELETE"},
      {"/v2.0/p1/resources/a.py", "GET, HEAD, DELETE"},
      {"/v2.0/p1/resources/a.py/content", "GET, HEAD, PUT"},
      {"/v2.0/p1/files/a.py", "GET, HEAD"},
      {"/v2.0/p1/blobs/x", "GET, HEAD, PUT"},
  };
  for (const auto& [path, allowed] : allow) {
    for (const std::string& method : kMethods) {
      const auto response = Call(method, path);
      if (allowed.find(method) != std::string::npos) {
        EXPECT_NE(Code(response), "APIGW.0101") << method << " " << path;
        continue;
      }
      EXPECT_EQ(response.status, 405) << method << " " << path;
      EXPECT_EQ(Code(response), "APIGW.0101") << method << " " << path;
      EXPECT_EQ(Header(response, "Allow"), allowed) << method << " " << path;
    }
  }
  // Every route's own path refuses a method nobody serves, naming the route's method.
  for (const Route& route : Routes()) {
    const auto response = Call("PATCH", SamplePath(route.pattern));
    EXPECT_EQ(response.status, 405) << route.pattern;
    EXPECT_NE(Header(response, "Allow").find(route.method), std::string::npos) << route.pattern;
  }
}

TEST_F(RouteTableTest, HeadAnswersWhereverGetDoesWithTheSameHeaders) {
  UploadNamed("a.py");
  ASSERT_EQ(Call("POST", "/v2.0/p1/resources",
                 R"({"paths": ["http://src/a.py"], "kind": "file", "group": "g"})")
                .status,
            200);
  for (const Route& route : Routes()) {
    if (route.method != "GET") continue;
    const std::string path = SamplePath(route.pattern);
    SCOPED_TRACE(path);
    const auto get = Call("GET", path);
    const auto head = Call("HEAD", path);
    EXPECT_EQ(head.status, get.status);
    // The console's entry points redirect to /console/; everything else answers.
    EXPECT_EQ(head.status,
              route.handler == &RedirectRoot || route.handler == &RedirectToConsole ? 302 : 200)
        << head.body;
    EXPECT_EQ(head.content_type, get.content_type);
    EXPECT_EQ(head.headers, get.headers);
    // The HTTP layer drops the body of a HEAD answer but keeps its length: it must be the same.
    EXPECT_EQ(head.body.size(), get.body.size());
    ASSERT_EQ(static_cast<bool>(head.stream), static_cast<bool>(get.stream));
    if (head.stream) {
      EXPECT_EQ(head.stream->Size(), get.stream->Size());
    }
  }
}

// The rows of a markdown API table: | `METHOD` | `/path` | [`Handler` |] ... |, as
// "METHOD /path [Handler]".
std::set<std::string> DocumentedRoutes(const std::string& file) {
  std::ifstream in(std::string(DLIPKG_SOURCE_DIR) + "/" + file);
  EXPECT_TRUE(in) << file;
  static const std::regex kRow(R"(^\| `([A-Z]+)` \| `(/[^`]*)` \|(?: `([A-Za-z]+)` \|)?)");
  std::set<std::string> rows;
  std::smatch m;
  for (std::string line; std::getline(in, line);) {
    if (!std::regex_search(line, m, kRow)) continue;
    rows.insert(m[1].str() + " " + m[2].str() + (m[3].matched ? " " + m[3].str() : ""));
  }
  return rows;
}

std::string Lines(const std::set<std::string>& rows) {
  std::string out;
  for (const auto& row : rows) out += "  " + row + "\n";
  return out;
}

TEST(RouteTable, TheReadmeAndDocsListExactlyTheRoutes) {
  std::set<std::string> readme_rows, docs_rows;
  for (const Route& route : Routes()) {
    const std::string row = std::string(route.method) + " " + std::string(route.pattern);
    readme_rows.insert(row);
    docs_rows.insert(row + " " + std::string(route.handler_name));
  }
  EXPECT_EQ(DocumentedRoutes("README.md"), readme_rows)
      << "README.md lists:\n"
      << Lines(DocumentedRoutes("README.md")) << "the table has:\n"
      << Lines(readme_rows);
  EXPECT_EQ(DocumentedRoutes("docs/api.md"), docs_rows)
      << "docs/api.md lists:\n"
      << Lines(DocumentedRoutes("docs/api.md")) << "the table has:\n"
      << Lines(docs_rows);
}

}  // namespace
}  // namespace dlipkg::api
