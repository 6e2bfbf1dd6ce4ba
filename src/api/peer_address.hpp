// Whether a listen host or a peer address is loopback: 127.0.0.0/8, ::1, an IPv4-mapped
// ::ffff:127.x.y.z (what a dual-stack socket reports), or the name "localhost".
// Used to keep an unauthenticated server to loopback clients (ResourcesApi, app start-up).
// Pure function; thread-safe.
#pragma once

#include <string_view>

namespace dlipkg::api {

bool IsLoopback(std::string_view host);

}  // namespace dlipkg::api
