// The operator's endpoints beside the DLI API: GET /metrics (Prometheus text, optionally
// behind a bearer token) and GET /readyz (whether the metadata and blob stores answer).
#include "api/ops_handlers.hpp"

#include <boost/json.hpp>

#include "api/handlers.hpp"

namespace dlipkg::api {
namespace {

// Compares without stopping at the first difference, so the time taken says nothing about how
// much of a guess was right.
bool SameToken(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

}  // namespace

Result<Response> ServeMetrics(const ApiContext& context, const Call& call) {
  const ApiOptions& options = context.options;
  const Request& request = call.request;
  if (options.metrics == nullptr)
    return Fail(ErrorCode::kNoRoute,
                "No such API: GET /metrics (the server runs with "
                "--metrics=false).");
  if (!options.metrics_token.empty()) {
    const auto authorization = request.Header("Authorization");
    const std::string_view given =
        authorization && authorization->starts_with("Bearer ") ? authorization->substr(7) : "";
    if (!SameToken(given, options.metrics_token))
      return Fail(ErrorCode::kUnauthenticated,
                  "GET /metrics needs 'Authorization: Bearer <token>' with the token of the "
                  "server's --metrics-token-file.");
  }
  Response response;
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  response.body = options.metrics->Render();
  return response;
}

void CountSyncUpload(const ApiOptions& options, const Result<UploadResult>& result,
                     std::size_t paths) {
  if (options.metrics == nullptr) return;
  options.metrics->CountUploads("sync", result.has_value(), static_cast<std::int64_t>(paths));
}

void CountDirectUpload(const ApiOptions& options, bool ok, std::size_t packages) {
  if (options.metrics == nullptr) return;
  options.metrics->CountUploads("direct", ok, static_cast<std::int64_t>(packages));
}

void CountPresignRefusal(const ApiOptions& options, const Error& error) {
  if (options.metrics == nullptr) return;
  // UrlGrants names the reason in its message; a store failure (kInternal) says nothing of the
  // URL. A fixed word per reason keeps the label set bounded.
  std::string_view reason = "signature";
  if (error.code != ErrorCode::kForbidden)
    reason = "error";
  else if (error.message.find("malformed") != std::string::npos)
    reason = "malformed";
  else if (error.message.find("expired") != std::string::npos)
    reason = "expired";
  options.metrics->CountPresignRefusal(reason);
}

Result<Response> Readiness(const ApiContext& context, const Call& call) {
  const ApiOptions& options = context.options;
  boost::json::object checks;
  bool ready = true;
  for (const auto& check : options.readiness) {
    if (check.probe == nullptr) continue;
    auto answered = check.probe->CheckReady();
    if (!answered) ready = false;
    checks[check.name] = answered ? std::string("ok") : "failed: " + answered.error().message;
  }
  boost::json::object body{{"status", ready ? "ok" : "unavailable"}, {"checks", std::move(checks)}};
  if (!ready) body["request_id"] = call.request.request_id;
  Response response;
  response.status = ready ? 200 : 503;
  response.body = boost::json::serialize(body);
  return response;
}

}  // namespace dlipkg::api
