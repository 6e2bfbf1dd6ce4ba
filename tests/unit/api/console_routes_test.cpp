#include "api/console_routes.hpp"

#include <gtest/gtest.h>

#include <string>

#include "api/console_assets.hpp"

namespace dlipkg::api {
namespace {

std::string HeaderOf(const Response& response, const std::string& name) {
  for (const auto& [key, value] : response.headers)
    if (key == name) return value;
  return "";
}

TEST(ConsoleRoutes, IndexIsEmbeddedWithSafetyHeaders) {
  auto index = ConsoleFile("");
  ASSERT_TRUE(index);
  EXPECT_EQ(index->status, 200);
  EXPECT_EQ(index->content_type, "text/html;charset=utf-8");
  EXPECT_NE(index->body.find("<script type=\"module\" src=\"app.js\">"), std::string::npos);
  EXPECT_EQ(HeaderOf(*index, "X-Frame-Options"), "DENY");
  EXPECT_EQ(HeaderOf(*index, "X-Content-Type-Options"), "nosniff");
  const auto csp = HeaderOf(*index, "Content-Security-Policy");
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(csp.find("unsafe"), std::string::npos);
}

TEST(ConsoleRoutes, EveryFileHasItsTypeAndUnknownPathsAreNoRoute) {
  ASSERT_GE(EmbeddedConsoleFiles().size(), 4u);
  for (const auto& file : EmbeddedConsoleFiles()) {
    auto response = ConsoleFile(file.path);
    ASSERT_TRUE(response) << file.path;
    EXPECT_EQ(response->body, file.data);
    EXPECT_NE(response->content_type, "application/octet-stream") << file.path;
  }
  EXPECT_EQ(ConsoleFile("app.js")->content_type, "text/javascript;charset=utf-8");
  EXPECT_EQ(ConsoleFile("console.css")->content_type, "text/css;charset=utf-8");
  EXPECT_EQ(ConsoleFile("missing.js").error().code, ErrorCode::kNoRoute);
  EXPECT_EQ(ConsoleFile("../CMakeLists.txt").error().code, ErrorCode::kNoRoute);
}

TEST(ConsoleRoutes, RedirectsToTheConsole) {
  const auto response = ConsoleRedirect();
  EXPECT_EQ(response.status, 302);
  EXPECT_EQ(HeaderOf(response, "Location"), "/console/");
}

}  // namespace
}  // namespace dlipkg::api
