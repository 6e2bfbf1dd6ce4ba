#include "adapters/auth/credential_authenticator.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include "adapters/auth/sdk_hmac_signature.hpp"
#include "adapters/common/utc_time.hpp"
#include "domain/names.hpp"

namespace dlipkg {
namespace {

bool SameName(std::string_view a, std::string_view b) {
  return std::ranges::equal(
      a, b, [](unsigned char x, unsigned char y) { return std::tolower(x) == std::tolower(y); });
}

// Every value of header `name` (case-insensitive), trimmed, in order received.
std::vector<std::string_view> HeaderValues(const AuthRequest& request, std::string_view name) {
  std::vector<std::string_view> values;
  if (request.headers == nullptr) return values;
  for (const auto& [key, value] : *request.headers)
    if (SameName(key, name)) values.push_back(Trim(value));
  return values;
}

std::unexpected<Error> Unauthenticated(std::string message) {
  return Fail(ErrorCode::kUnauthenticated, std::move(message));
}

// Header values that are credentials themselves: shown as "***" if a client chose to sign
// them, so the canonical request in a 401 message never carries a secret.
bool IsCredentialHeader(std::string_view name) {
  static constexpr std::array<std::string_view, 5> kNames{
      "authorization", "x-auth-token", "x-security-token", "cookie", "proxy-authorization"};
  return std::ranges::any_of(kNames, [&](auto secret) { return SameName(secret, name); });
}

// The canonical request as the 401 message shows it: newlines as '|', credentials masked.
std::string CanonicalForMessage(CanonicalRequestParts parts) {
  for (auto& [name, value] : parts.headers)
    if (IsCredentialHeader(name)) value = "***";
  auto text = CanonicalRequest(parts).value_or("");
  std::ranges::replace(text, '\n', '|');
  return text;
}

}  // namespace

CredentialAuthenticator::CredentialAuthenticator(const CredentialStore& store, const Clock& clock)
    : store_(store), clock_(clock) {}

Result<Identity> CredentialAuthenticator::Authenticate(const AuthRequest& request) {
  const auto credentials = store_.Snapshot();  // one snapshot for the whole request
  const auto authorization = HeaderValues(request, "Authorization");
  const auto token = HeaderValues(request, "X-Auth-Token");
  if (authorization.size() > 1 || token.size() > 1)
    return Unauthenticated(
        "The request carries more than one Authorization or X-Auth-Token "
        "header.");
  const bool signed_request =
      !authorization.empty() && authorization[0].starts_with(kSdkHmacAlgorithm);
  Result<std::string> user = [&]() -> Result<std::string> {
    if (signed_request) return VerifySignature(*credentials, authorization[0], request);
    if (!token.empty()) return VerifyToken(*credentials, token[0]);
    if (!authorization.empty())
      return Unauthenticated(
          "Unsupported Authorization scheme: sign with SDK-HMAC-SHA256 or "
          "send X-Auth-Token.");
    return Unauthenticated(
        "missing credentials: send X-Auth-Token, or sign the request with "
        "SDK-HMAC-SHA256 (Authorization and X-Sdk-Date headers).");
  }();
  if (!user) return std::unexpected(user.error());

  for (const auto header_project : HeaderValues(request, "X-Project-Id")) {
    if (header_project != request.project)
      return Fail(ErrorCode::kForbidden, "X-Project-Id '" +
                                             std::string(header_project.substr(0, 64)) +
                                             "' differs from the project in the path '" +
                                             std::string(request.project) + "'.");
  }
  const auto found = credentials->users.find(*user);
  if (found == credentials->users.end() || !found->second.projects.contains(request.project))
    return Fail(ErrorCode::kForbidden,
                "User " + *user + " may not use project " + std::string(request.project) + ".");
  Identity identity{std::move(*user), std::nullopt};
  if (signed_request && request.body_streamed) {
    const auto content_sha = HeaderValues(request, "X-Sdk-Content-Sha256");
    if (content_sha.size() == 1 && content_sha[0] != kUnsignedPayload)
      if (auto declared = Sha256Hex::Parse(content_sha[0], "X-Sdk-Content-Sha256"))
        identity.signed_payload_sha256 = std::move(*declared);
  }
  return identity;
}

bool CredentialAuthenticator::UserExists(std::string_view user) {
  return store_.Snapshot()->users.contains(user);
}

Result<std::string> CredentialAuthenticator::VerifyToken(const Credentials& credentials,
                                                         std::string_view token) const {
  const auto found = credentials.tokens.find(TokenDigest(token));
  if (found == credentials.tokens.end()) return Unauthenticated("The token is not valid.");
  if (found->second.expires_at_ms && clock_.NowMs() >= *found->second.expires_at_ms)
    return Unauthenticated("The token expired at " + FormatUtc(*found->second.expires_at_ms) + ".");
  return found->second.user;
}

Result<std::string> CredentialAuthenticator::VerifySignature(const Credentials& credentials,
                                                             std::string_view authorization,
                                                             const AuthRequest& request) const {
  const auto parsed = ParseSdkAuthorization(authorization);
  if (!parsed)
    return Unauthenticated(
        "Malformed Authorization header: expected 'SDK-HMAC-SHA256 "
        "Access=<AK>, SignedHeaders=<h1;h2>, Signature=<hex>'.");
  if (std::ranges::find(parsed->signed_headers, "x-sdk-date") == parsed->signed_headers.end())
    return Unauthenticated("SignedHeaders must include x-sdk-date.");

  // Exactly the headers the client says it signed, in its order; never headers of our choosing.
  CanonicalRequestParts parts{.method = request.method, .raw_target = request.raw_target};
  for (const auto name : parsed->signed_headers) {
    const auto values = HeaderValues(request, name);
    if (values.size() != 1)
      return Unauthenticated("Signed header '" + std::string(name.substr(0, 64)) + "' is " +
                             (values.empty() ? "missing." : "repeated."));
    parts.headers.emplace_back(name, values[0]);
  }
  const auto date = HeaderValues(request, "X-Sdk-Date")[0];
  const auto signed_at = ParseSdkDateMs(date);
  if (!signed_at) return Unauthenticated("X-Sdk-Date must be a UTC time written YYYYMMDDTHHMMSSZ.");
  const auto now = clock_.NowMs();
  if (*signed_at > now + kMaxClockSkewMs || *signed_at < now - kMaxClockSkewMs)
    return Unauthenticated("X-Sdk-Date " + FormatUtc(*signed_at) +
                           " is more than 15 minutes from the server's time " + FormatUtc(now) +
                           ".");

  const auto content_sha = HeaderValues(request, "X-Sdk-Content-Sha256");
  const bool unsigned_payload = !content_sha.empty() && content_sha[0] == kUnsignedPayload;
  parts.payload_hash = unsigned_payload ? std::string(kUnsignedPayload) : PayloadHash(request.body);
  if (request.body_streamed && !unsigned_payload) {
    // The body has not been read yet: the signature is checked against the hash the client
    // declares, and the body against that hash once it is in (Identity::signed_payload_sha256).
    auto declared = content_sha.size() == 1 ? ParseSha256(content_sha[0], "X-Sdk-Content-Sha256")
                                            : Result<std::string>(std::unexpected(Error{}));
    if (!declared)
      return Unauthenticated(
          "A streamed body signed with AK/SK needs X-Sdk-Content-Sha256: the hex SHA-256 of "
          "the body, or UNSIGNED-PAYLOAD.");
    parts.payload_hash = *declared;
  }
  const auto canonical = CanonicalRequest(parts);
  if (!canonical) return Unauthenticated("The request target has a malformed percent-encoding.");
  // An unknown AK gets the very answer a bad signature gets, so that the answer does not tell
  // which access keys exist.
  const auto mismatch = [&] {
    return Unauthenticated(
        "The request signature does not match. The server's canonical "
        "request (newlines shown as |): " +
        CanonicalForMessage(parts));
  };
  const auto key = credentials.access_keys.find(std::string(parsed->access_key));
  if (key == credentials.access_keys.end()) return mismatch();
  const auto signs = [&](const std::string& canonical_request) {
    const auto expected = SdkSignature(key->second.secret, date, canonical_request);
    return ConstantTimeEquals(expected, parsed->signature);
  };
  // The Node.js SDK signs an escaped path escaped again; its form differs from the canonical one
  // (docs/auth.md) only when the path has a '%', so only then is it tried. (It lets a signature for
  // a resource literally named "a%20b.py" also pass for "a b.py": same user, method, body and
  // 15-minute window, so we accept that to let the official Node.js client work unchanged.)
  const bool path_has_escape =
      request.raw_target.substr(0, request.raw_target.find('?')).find('%') !=
      std::string_view::npos;
  const auto node_form = [&] {
    auto node_parts = parts;
    node_parts.uri_form = UriForm::kEncodedAsSent;
    auto node_canonical = CanonicalRequest(node_parts);
    return node_canonical && signs(*node_canonical);
  };
  if (!signs(*canonical) && !(path_has_escape && node_form())) return mismatch();
  return key->second.user;
}

}  // namespace dlipkg
