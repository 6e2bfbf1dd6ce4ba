// libFuzzer target: SDK-HMAC signature parsing and the canonical request built from a request
// target (path and query as sent), as the authenticator uses them.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "adapters/auth/sdk_hmac_signature.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  using namespace dlipkg;
  (void)ParseSdkAuthorization(text);
  CanonicalRequestParts parts{.method = "GET", .raw_target = text};
  parts.headers.emplace_back("host", "127.0.0.1");
  parts.payload_hash = PayloadHash(text);
  if (auto canonical = CanonicalRequest(parts)) {
    const auto signature = HmacSha256Hex("sk", StringToSign("20240101T000000Z", *canonical));
    (void)ConstantTimeEquals(signature, text);
  }
  parts.uri_form = UriForm::kEncodedAsSent;
  (void)CanonicalRequest(parts);
  (void)SdkUrlEncode(text);
  return 0;
}
