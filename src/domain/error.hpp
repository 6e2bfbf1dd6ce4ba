// Error codes of dlipkg and the Result type every layer returns.
// The mapping from code to HTTP status and DLI error_code lives in one place: api/error_table.
// Plain values; thread-safe to copy.
#pragma once

#include <expected>
#include <string>
#include <utility>

namespace dlipkg {

enum class ErrorCode {
  kBadRequest,         // malformed input, bad name/kind/tag, policy refusal of a URL
  kBodyTooLarge,       // request body over the limit
  kSourceUnavailable,  // a source object could not be fetched (not found, refused, too large, ...)
  kNotFound,           // package or group does not exist
  kUnknownUser,        // owner change to a user the server does not know
  kNotSupported,       // a valid request for something this server does not do (yet)
  kQuotaExceeded,      // a per-project quota, or the job queue bound
  kUnauthenticated,    // missing or invalid credentials
  kForbidden,          // authenticated, not allowed on this project
  kNoRoute,            // unknown path
  kMethodNotAllowed,   // known path, but not with this method
  kBusy,               // no capacity for this now (fetchers busy, shutting down): try again
  kInternal,           // storage down, bug
  kCorrupted,          // stored bytes do not match their SHA-256
  kRangeNotSatisfiable,  // a download's Range lies outside the package
  kShuttingDown,       // work abandoned because the server is stopping: resumed after restart
};

// Every code, for tests that must walk them all.
inline constexpr ErrorCode kAllErrorCodes[] = {
    ErrorCode::kBadRequest,    ErrorCode::kBodyTooLarge,     ErrorCode::kSourceUnavailable,
    ErrorCode::kNotFound,      ErrorCode::kUnknownUser,      ErrorCode::kNotSupported,
    ErrorCode::kQuotaExceeded, ErrorCode::kUnauthenticated,  ErrorCode::kForbidden,
    ErrorCode::kNoRoute,       ErrorCode::kMethodNotAllowed, ErrorCode::kBusy,
    ErrorCode::kInternal,      ErrorCode::kCorrupted,        ErrorCode::kRangeNotSatisfiable,
    ErrorCode::kShuttingDown,
};

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;     // shown to the client: no secrets, no server paths
  bool retryable = false;  // a transient failure (timeout, reset, 5xx, 429) worth retrying
};

template <class T>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> Fail(ErrorCode code, std::string message, bool retryable = false) {
  return std::unexpected(Error{code, std::move(message), retryable});
}

}  // namespace dlipkg
