// The exit statuses of the client subcommands (documented in README "Client" and
// `dlipkg --help`), so scripts can tell a typo from a missing package from a dead server.
// Plain constants; thread-safe.
#pragma once

namespace dlipkg::client {

enum class ExitStatus : int {
  kOk = 0,
  kFailed = 1,    // the server refused the request (400), a package FAILED, a download was corrupt
  kUsage = 2,     // bad command line, missing connection settings, unusable profile file
  kNotFound = 3,  // the package or group does not exist (404)
  kAuth = 4,      // credentials refused (401) or not allowed on the project (403)
  kServer = 5,    // server error (5xx) or network failure, after the retries
  kTimeout = 6,   // `wait --timeout` ran out
};

inline int ToInt(ExitStatus status) { return static_cast<int>(status); }

}  // namespace dlipkg::client
