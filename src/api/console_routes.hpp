// The web console's routes: `GET /` redirects to /console/, `GET /console/...` answers the
// embedded static files (console_assets.hpp) with their Content-Type and the headers that keep
// the page safe (a strict Content-Security-Policy without inline script, X-Frame-Options: DENY,
// nosniff). The files carry no data, so they need no authentication. Pure; thread-safe.
#pragma once

#include <string_view>

#include "api/http_types.hpp"
#include "domain/error.hpp"

namespace dlipkg::api {

// The security headers every console response carries.
inline constexpr std::string_view kConsoleCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

// 302 to /console/ followed by `query` ("" or "?..." from the request's own target).
Response ConsoleRedirect(std::string_view query = "");

// The file at `path` below /console/ (raw, before any query); "" is index.html. kNoRoute when
// there is no such file.
Result<Response> ConsoleFile(std::string_view path);

}  // namespace dlipkg::api
