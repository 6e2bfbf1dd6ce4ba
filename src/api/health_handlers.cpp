// Handlers that need no project and no credentials.
#include "api/handlers.hpp"

namespace dlipkg::api {

// Liveness. Says when the server runs without authentication for every peer, so an operator
// notices.
Result<Response> Health(const ApiContext& context, const Call&) {
  const bool open = context.authenticator == nullptr && context.options.insecure_no_auth;
  return JsonResponse(open ? R"({"status":"ok","auth":"disabled"})" : R"({"status":"ok"})");
}

}  // namespace dlipkg::api
