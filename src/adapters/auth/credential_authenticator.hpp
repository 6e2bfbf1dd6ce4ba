// The Authenticator port over a CredentialStore: token mode (X-Auth-Token) and AK/SK mode
// (SDK-HMAC-SHA256, docs/auth.md), then project isolation (the user's projects, X-Project-Id).
// Built by the app when --credentials is given; the API layer calls it for every request.
// Thread-safe: each call reads one immutable snapshot of the store, so a reload in between is
// harmless; the clock is injected so the 15-minute window is testable offline.
#pragma once

#include <cstdint>

#include "adapters/auth/credential_store.hpp"
#include "ports/authenticator.hpp"
#include "ports/clock.hpp"

namespace dlipkg {

class CredentialAuthenticator final : public Authenticator {
 public:
  static constexpr std::int64_t kMaxClockSkewMs = 15 * 60 * 1000;

  // Both must outlive the authenticator.
  CredentialAuthenticator(const CredentialStore& store, const Clock& clock);

  Result<Identity> Authenticate(const AuthRequest& request) override;
  bool UserExists(std::string_view user) override;

 private:
  Result<std::string> VerifyToken(const Credentials& credentials, std::string_view token) const;
  Result<std::string> VerifySignature(const Credentials& credentials,
                                      std::string_view authorization,
                                      const AuthRequest& request) const;

  const CredentialStore& store_;
  const Clock& clock_;
};

}  // namespace dlipkg
