#include "api/console_routes.hpp"

#include <string>

#include "api/console_assets.hpp"
#include "api/handlers.hpp"

namespace dlipkg::api {
namespace {

std::string_view ContentTypeOf(std::string_view path) {
  const auto dot = path.rfind('.');
  const std::string_view ext = dot == std::string_view::npos ? "" : path.substr(dot);
  if (ext == ".html") return "text/html;charset=utf-8";
  if (ext == ".css") return "text/css;charset=utf-8";
  if (ext == ".js") return "text/javascript;charset=utf-8";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  return "application/octet-stream";
}

void AddSecurityHeaders(Response& response) {
  response.headers.emplace_back("Content-Security-Policy", std::string(kConsoleCsp));
  response.headers.emplace_back("X-Frame-Options", "DENY");
  response.headers.emplace_back("X-Content-Type-Options", "nosniff");
  response.headers.emplace_back("Referrer-Policy", "no-referrer");
  // Small files embedded in this very binary: revalidating is cheap, and a stale console after
  // an upgrade would talk to an API it does not match.
  response.headers.emplace_back("Cache-Control", "no-cache");
}

}  // namespace

Response ConsoleRedirect(std::string_view query) {
  Response response;
  response.status = 302;
  response.content_type = "";
  response.headers.emplace_back("Location", "/console/" + std::string(query));
  AddSecurityHeaders(response);
  return response;
}

Result<Response> ConsoleFile(std::string_view path) {
  if (path.empty()) path = "index.html";
  for (const auto& file : EmbeddedConsoleFiles()) {
    if (file.path != path) continue;
    Response response;
    response.content_type = std::string(ContentTypeOf(path));
    response.body = std::string(file.data);
    AddSecurityHeaders(response);
    return response;
  }
  return Fail(ErrorCode::kNoRoute,
              "No such console file: /console/" + std::string(path.substr(0, 200)) + ".");
}

Result<Response> RedirectRoot(const ApiContext&, const Call&) { return ConsoleRedirect(); }

// The query goes along, so `/console?project=p1` opens p1 as `/console/?project=p1` does.
Result<Response> RedirectToConsole(const ApiContext&, const Call& call) {
  const auto question = call.request.target.find('?');
  return ConsoleRedirect(question == std::string::npos ? "" : call.request.target.substr(question));
}

Result<Response> ServeConsole(const ApiContext&, const Call& call) {
  return ConsoleFile(call.Param("file"));
}

}  // namespace dlipkg::api
