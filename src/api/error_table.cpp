#include "api/error_table.hpp"

#include <boost/json.hpp>

namespace dlipkg::api {

ErrorMapping MapError(ErrorCode code) {
  switch (code) {
    case ErrorCode::kBadRequest:
      return {400, "DLI.0001"};
    case ErrorCode::kBodyTooLarge:
      return {413, "DLI.0001"};
    case ErrorCode::kSourceUnavailable:
      return {400, "DLI.0012"};
    case ErrorCode::kNotFound:
      return {404, "DLI.0002"};
    case ErrorCode::kUnknownUser:
      return {400, "DLI.0002"};
    case ErrorCode::kNotSupported:
      return {400, "DLI.0007"};
    case ErrorCode::kQuotaExceeded:
      return {400, "DLI.1028"};
    case ErrorCode::kUnauthenticated:
      return {401, "APIGW.0301"};
    case ErrorCode::kForbidden:
      return {403, "APIGW.0302"};
    case ErrorCode::kNoRoute:
      return {404, "APIGW.0101"};
    // The gateway's "no such API" code, with the status that says the path exists: clients
    // that branch on error_code see one code for every request the table does not serve.
    case ErrorCode::kMethodNotAllowed:
      return {405, "APIGW.0101"};
    case ErrorCode::kBusy:  // the gateway's throttling answer: SDKs retry it later
      return {429, "APIGW.0308"};
    case ErrorCode::kInternal:
      return {500, "DLI.0999"};
    case ErrorCode::kCorrupted:
      return {500, "DLI.0999"};
    case ErrorCode::kRangeNotSatisfiable:
      return {416, "DLI.0001"};
    // Today only async jobs meet it, and no client waits for those; should a request ever be
    // cut short by a stop, 503 tells its client to try again (elsewhere).
    case ErrorCode::kShuttingDown:
      return {503, "DLI.0999"};
  }
  return {500, "DLI.0999"};
}

Response ErrorResponse(const Error& error, const std::string& request_id) {
  const auto mapping = MapError(error.code);
  boost::json::object body{{"error_code", mapping.error_code}, {"error_msg", error.message}};
  // Every error names its request, so a client's report leads to the server's log line.
  if (!request_id.empty()) body["request_id"] = request_id;
  Response response;
  response.status = mapping.http_status;
  response.body = boost::json::serialize(body);
  if (mapping.http_status >= 500) response.log_note = error.message;
  return response;
}

}  // namespace dlipkg::api
