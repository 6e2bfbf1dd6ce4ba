#include "adapters/auth/hmac_url_signer.hpp"

#include <openssl/rand.h>

#include <new>

#include "adapters/auth/sdk_hmac_signature.hpp"
#include "adapters/common/sha256.hpp"

namespace dlipkg {

std::string NewUrlKey() {
  unsigned char bytes[32];
  // RAND_bytes fails only when the system has no entropy source: nothing safe can be signed.
  if (RAND_bytes(bytes, sizeof bytes) != 1) throw std::bad_alloc();
  return HexLower(bytes);
}

HmacUrlSigner::HmacUrlSigner(UrlKeyStore& keys, const Clock& clock,
                             std::chrono::milliseconds refresh)
    : keys_(keys), clock_(clock), refresh_(refresh) {}

Result<std::string> HmacUrlSigner::Key() {
  const std::int64_t now = clock_.NowMs();
  std::lock_guard lock(mutex_);
  if (!key_.empty() && now >= read_at_ms_ && now - read_at_ms_ < refresh_.count()) return key_;
  auto key = keys_.UrlKey(NewUrlKey(), now);
  if (!key) return std::unexpected(key.error());
  key_ = std::move(*key);
  read_at_ms_ = now;
  return key_;
}

Result<std::string> HmacUrlSigner::Sign(std::string_view grant) {
  auto key = Key();
  if (!key) return std::unexpected(key.error());
  return HmacSha256Hex(*key, grant);
}

Result<bool> HmacUrlSigner::Verify(std::string_view grant, std::string_view signature) {
  auto expected = Sign(grant);
  if (!expected) return std::unexpected(expected.error());
  return ConstantTimeEquals(*expected, signature);
}

}  // namespace dlipkg
