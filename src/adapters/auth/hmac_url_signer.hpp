// UrlSigner with HMAC-SHA256 keyed by the secret in a UrlKeyStore (the metadata store, shared by
// every instance). The key is created on first use and cached for `refresh`, so a rotation by
// any instance (dlipkg serve --rotate-url-key) revokes old URLs everywhere within that time.
// Built by the app; the core's UrlGrants calls it. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

#include "ports/clock.hpp"
#include "ports/url_key_store.hpp"
#include "ports/url_signer.hpp"

namespace dlipkg {

// 32 random bytes from OpenSSL's generator, as 64 hex characters: a new URL key.
std::string NewUrlKey();

class HmacUrlSigner final : public UrlSigner {
 public:
  // Both must outlive the signer.
  HmacUrlSigner(UrlKeyStore& keys, const Clock& clock,
                std::chrono::milliseconds refresh = std::chrono::seconds(5));

  Result<std::string> Sign(std::string_view grant) override;
  Result<bool> Verify(std::string_view grant, std::string_view signature) override;

 private:
  Result<std::string> Key();

  UrlKeyStore& keys_;
  const Clock& clock_;
  const std::chrono::milliseconds refresh_;
  std::mutex mutex_;
  std::string key_;  // "" until first read
  std::int64_t read_at_ms_ = 0;
};

}  // namespace dlipkg
