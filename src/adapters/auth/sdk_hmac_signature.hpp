// The SDK-HMAC-SHA256 request signature (docs/auth.md), as the Huawei Cloud SDK cores compute
// it: canonical request, string to sign, HMAC-SHA256 keyed with the SK (no key derivation).
// CredentialAuthenticator verifies requests with it; tests sign requests with it.
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dlipkg {

inline constexpr std::string_view kSdkHmacAlgorithm = "SDK-HMAC-SHA256";
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";

// The parts of "SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<a;b>, Signature=<hex>".
struct SdkAuthorization {
  std::string_view access_key;
  std::vector<std::string_view> signed_headers;  // as listed, in order
  std::string_view signature;
};
// nullopt: another scheme, or a part missing, empty or repeated.
std::optional<SdkAuthorization> ParseSdkAuthorization(std::string_view header);

// Percent-encodes every byte except A-Z a-z 0-9 - _ . ~, with upper-case hex.
std::string SdkUrlEncode(std::string_view bytes);

// How a client turns its path into the canonical URI.
enum class UriForm {
  // docs/auth.md, step 4 (Python, Go): each segment percent-decoded once, then encoded.
  kDecodedOnce,
  // The official Node.js SDK core: it signs the path Node's url.parse already escaped, encoding
  // it again, so a space travels as "%20" but is signed as "%2520".
  kEncodedAsSent,
};

// The raw path split on '/', each segment re-encoded per `form`, a trailing '/' appended:
// "/v2.0/p1/resources/a%20b.py" -> "/v2.0/p1/resources/a%20b.py/" (kDecodedOnce).
// nullopt: a malformed escape.
std::optional<std::string> CanonicalUri(std::string_view raw_path,
                                        UriForm form = UriForm::kDecodedOnce);

// The raw query (after '?', without it): pairs decoded once, sorted by name then value (byte
// order of the decoded text, as the SDKs sort their parameters), re-encoded, "name=value"
// joined by '&' ('=' kept for empty values). "" for no query. nullopt: a malformed escape.
std::optional<std::string> CanonicalQuery(std::string_view raw_query);

// Lower-case hex SHA-256 of the raw body bytes.
std::string PayloadHash(std::string_view body);

struct CanonicalRequestParts {
  std::string_view method;
  std::string_view raw_target;  // path and query as received
  // The signed headers in SignedHeaders order: name as signed (lower case), value as received
  // (surrounding white space is trimmed here).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload_hash;  // PayloadHash(body) or kUnsignedPayload
  UriForm uri_form = UriForm::kDecodedOnce;
};

// METHOD\nURI\nQUERY\nHEADERS\nSIGNED_HEADERS\nPAYLOAD_HASH. nullopt: a malformed escape.
std::optional<std::string> CanonicalRequest(const CanonicalRequestParts& parts);

// "SDK-HMAC-SHA256\n<date>\n<hex SHA-256 of the canonical request>".
std::string StringToSign(std::string_view sdk_date, std::string_view canonical_request);

// Lower-case hex HMAC-SHA256 of `data` keyed with `key`'s bytes.
std::string HmacSha256Hex(std::string_view key, std::string_view data);

// Equal contents, compared in time that does not depend on where they differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace dlipkg
