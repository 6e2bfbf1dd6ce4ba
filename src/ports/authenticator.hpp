// Who sent a request: verifies token (X-Auth-Token) or AK/SK (SDK-HMAC-SHA256) credentials
// against a credential store, as docs/auth.md describes, and knows which users exist.
// Used by the API layer before any route runs. Blocking only on in-memory work; thread-safe
// (the store may be swapped by a reload while requests are verified).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "domain/error.hpp"

namespace dlipkg {

// The parts of an HTTP request that authentication reads, as received on the wire.
struct AuthRequest {
  std::string_view method;      // "GET", ...
  std::string_view raw_target;  // path and query, still percent-encoded
  const std::vector<std::pair<std::string, std::string>>* headers = nullptr;  // as received
  std::string_view body;                                                      // raw bytes
  std::string_view project;  // the project_id of the path (already validated)
};

struct Identity {
  std::string user;
};

class Authenticator {
 public:
  virtual ~Authenticator() = default;
  // Errors: kUnauthenticated (missing/invalid credentials, bad signature, skew over 15
  // minutes; the message may carry the canonical request, never a secret), kForbidden
  // (the user may not use `project`, or X-Project-Id differs from it).
  virtual Result<Identity> Authenticate(const AuthRequest& request) = 0;
  // Whether `user` is a known user (an owner change names one).
  virtual bool UserExists(std::string_view user) = 0;
};

}  // namespace dlipkg
