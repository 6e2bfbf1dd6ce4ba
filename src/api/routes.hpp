// The server's one route table: every method and path it answers, the handler that answers
// it and who may call it. Read by ResourcesApi (dispatch), by the route-table unit test and
// by the test that checks the README's and docs/api.md's API tables against it.
// Constant; thread-safe.
#pragma once

#include <span>

#include "api/route.hpp"

namespace dlipkg::api {

std::span<const Route> Routes();

}  // namespace dlipkg::api
