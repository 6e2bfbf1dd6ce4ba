#include "adapters/auth/sdk_hmac_signature.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <new>

#include "adapters/common/percent_encoding.hpp"
#include "adapters/common/sha256.hpp"
#include "domain/names.hpp"

namespace dlipkg {
namespace {}  // namespace

std::optional<SdkAuthorization> ParseSdkAuthorization(std::string_view header) {
  header = Trim(header);
  if (!header.starts_with(kSdkHmacAlgorithm)) return std::nullopt;
  const auto rest = header.substr(kSdkHmacAlgorithm.size());
  if (rest.empty() || (rest.front() != ' ' && rest.front() != '\t')) return std::nullopt;
  std::optional<std::string_view> access, names, signature;
  for (auto part : Split(rest, ',')) {
    part = Trim(part);
    const auto eq = part.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    const auto key = part.substr(0, eq);
    auto* slot = key == "Access"          ? &access
                 : key == "SignedHeaders" ? &names
                 : key == "Signature"     ? &signature
                                          : nullptr;
    if (slot == nullptr || slot->has_value()) return std::nullopt;
    *slot = Trim(part.substr(eq + 1));
  }
  if (!access || !names || !signature || access->empty() || names->empty() || signature->empty())
    return std::nullopt;
  SdkAuthorization parsed{*access, Split(*names, ';'), *signature};
  if (std::ranges::any_of(parsed.signed_headers, [](auto name) { return name.empty(); }))
    return std::nullopt;
  return parsed;
}

std::string SdkUrlEncode(std::string_view bytes) { return PercentEncodeUnreserved(bytes); }

std::optional<std::string> CanonicalUri(std::string_view raw_path, UriForm form) {
  std::string uri;
  const auto segments = Split(raw_path, '/');
  for (std::size_t i = 0; i < segments.size(); ++i) {
    auto decoded = form == UriForm::kDecodedOnce ? PercentDecode(segments[i])
                                                 : std::optional(std::string(segments[i]));
    if (!decoded) return std::nullopt;
    if (i > 0) uri += '/';
    uri += SdkUrlEncode(*decoded);
  }
  if (uri.empty() || uri.back() != '/') uri += '/';
  return uri;
}

std::optional<std::string> CanonicalQuery(std::string_view raw_query) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const auto pair : Split(raw_query, '&')) {
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    auto name = PercentDecode(pair.substr(0, eq));
    auto value = PercentDecode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    if (!name || !value) return std::nullopt;
    pairs.emplace_back(std::move(*name), std::move(*value));
  }
  std::sort(pairs.begin(), pairs.end());  // std::string compares as unsigned bytes
  std::string query;
  for (const auto& [name, value] : pairs) {
    if (!query.empty()) query += '&';
    query += SdkUrlEncode(name);
    query += '=';
    query += SdkUrlEncode(value);
  }
  return query;
}

std::string PayloadHash(std::string_view body) {
  Sha256Hasher hasher;
  hasher.Update(body);
  return hasher.FinishHex();
}

std::optional<std::string> CanonicalRequest(const CanonicalRequestParts& parts) {
  const auto question = parts.raw_target.find('?');
  auto uri = CanonicalUri(parts.raw_target.substr(0, question), parts.uri_form);
  auto query =
      CanonicalQuery(question == std::string_view::npos ? std::string_view()
                                                        : parts.raw_target.substr(question + 1));
  if (!uri || !query) return std::nullopt;
  std::string headers;
  std::string names;
  for (const auto& [name, value] : parts.headers) {
    headers += name + ":" + std::string(Trim(value)) + "\n";
    if (!names.empty()) names += ';';
    names += name;
  }
  std::string request;
  request.reserve(256 + headers.size());
  request.append(parts.method).append("\n");
  request.append(*uri).append("\n");
  request.append(*query).append("\n");
  request.append(headers).append("\n");
  request.append(names).append("\n");
  request.append(parts.payload_hash);
  return request;
}

std::string StringToSign(std::string_view sdk_date, std::string_view canonical_request) {
  std::string text(kSdkHmacAlgorithm);
  text.append("\n").append(sdk_date).append("\n").append(PayloadHash(canonical_request));
  return text;
}

std::string HmacSha256Hex(std::string_view key, std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  // OpenSSL fails here only without memory.
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest,
           &length) == nullptr)
    throw std::bad_alloc();
  return HexLower(std::span(digest, length));
}

std::string SdkSignature(std::string_view secret_key, std::string_view sdk_date,
                         std::string_view canonical_request) {
  return HmacSha256Hex(secret_key, StringToSign(sdk_date, canonical_request));
}

std::optional<std::string> SignSdkRequest(const CanonicalRequestParts& parts,
                                          std::string_view access_key, std::string_view secret_key,
                                          std::string_view sdk_date) {
  const auto canonical = CanonicalRequest(parts);
  if (!canonical) return std::nullopt;
  std::string names;
  for (const auto& [name, value] : parts.headers) {
    if (!names.empty()) names += ';';
    names += name;
  }
  std::string header(kSdkHmacAlgorithm);
  header.append(" Access=").append(access_key);
  header.append(", SignedHeaders=").append(names);
  header.append(", Signature=").append(SdkSignature(secret_key, sdk_date, *canonical));
  return header;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // The length of a hex signature is public; only the contents must not leak through timing.
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace dlipkg
