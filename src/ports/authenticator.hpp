// Who sent a request: verifies token (X-Auth-Token) or AK/SK (SDK-HMAC-SHA256) credentials
// against a credential store, as docs/auth.md describes, and knows which users exist.
// Used by the API layer before any route runs. Blocking only on in-memory work; thread-safe
// (the store may be swapped by a reload while requests are verified).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "domain/error.hpp"
#include "domain/values.hpp"

namespace dlipkg {

// The parts of an HTTP request that authentication reads, as received on the wire.
struct AuthRequest {
  std::string_view method;      // "GET", ...
  std::string_view raw_target;  // path and query, still percent-encoded
  const std::vector<std::pair<std::string, std::string>>* headers = nullptr;  // as received
  std::string_view body;                                                      // raw bytes
  std::string_view project;  // the project_id of the path (already validated)
  // The body is still streaming in (a direct upload): an AK/SK signature is checked against
  // the payload hash the client declares in X-Sdk-Content-Sha256 (hex, or UNSIGNED-PAYLOAD),
  // and the caller compares the declared hash with the body once it has been read.
  bool body_streamed = false;
};

struct Identity {
  std::string user;
  // For a streamed body: the payload hash the signature covered (lower-case hex), which the
  // body must have; nullopt when nothing is to be checked (token, UNSIGNED-PAYLOAD).
  std::optional<Sha256Hex> signed_payload_sha256;
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
