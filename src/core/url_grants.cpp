#include "core/url_grants.hpp"

#include <algorithm>
#include <charconv>

namespace dlipkg {

UrlGrants::UrlGrants(MetadataStore& metadata, UrlSigner& signer, const Clock& clock,
                     std::int64_t max_lifetime_s)
    : metadata_(metadata), signer_(signer), clock_(clock), max_lifetime_s_(max_lifetime_s) {}

// What the signature covers: the method (reads only), the package's path components (decoded,
// so a client's choice of percent-encoding does not matter) and the expiry.
std::string UrlGrants::GrantText(const std::string& project, const std::string& group,
                                 const std::string& name, std::int64_t expires_at_s) {
  return "GET\n" + project + "\n" + group + "\n" + name + "\n" + std::to_string(expires_at_s);
}

Result<std::vector<PackageRecord>> UrlGrants::Packages(const GrantRequest& request) {
  const std::string group = request.group.value_or("");
  std::vector<PackageRecord> packages;
  if (!request.names) {
    if (!request.group) return Fail(ErrorCode::kBadRequest, "Give group, resource_names or both.");
    auto found = metadata_.GetGroup(request.project, group);
    if (!found) return std::unexpected(found.error());
    if (!*found) return Fail(ErrorCode::kNotFound, "The group '" + group + "' does not exist.");
    for (auto& p : (*found)->packages)
      if (p.status == PackageStatus::kReady) packages.push_back(std::move(p));
    return packages;
  }
  if (request.names->empty() || request.names->size() > 100)
    return Fail(ErrorCode::kBadRequest, "resource_names must hold 1 to 100 names.");
  for (const auto& raw : *request.names) {
    auto name = ParseResourceName(raw);
    if (!name) return std::unexpected(name.error());
    auto found = metadata_.GetPackage(request.project, group, *name);
    if (!found) return std::unexpected(found.error());
    if (!*found)
      return Fail(ErrorCode::kNotFound,
                  "The resource '" + *name + "' does not exist" +
                      (group.empty() ? std::string(".") : " in group '" + group + "'."));
    if ((*found)->status != PackageStatus::kReady)
      return Fail(ErrorCode::kBadRequest, "The resource '" + *name + "' is " +
                                              std::string(ToString((*found)->status)) +
                                              ", not READY.");
    packages.push_back(std::move(**found));
  }
  return packages;
}

Result<std::vector<UrlGrant>> UrlGrants::Grant(const GrantRequest& request) {
  const std::int64_t wanted = request.expires_in_s.value_or(kDefaultUrlLifetimeS);
  if (wanted <= 0) return Fail(ErrorCode::kBadRequest, "expires_in must be a positive number.");
  const std::int64_t lifetime = std::min(wanted, max_lifetime_s_);
  auto packages = Packages(request);
  if (!packages) return std::unexpected(packages.error());
  const std::int64_t expires_at = clock_.NowMs() / 1000 + lifetime;
  std::vector<UrlGrant> grants;
  for (auto& package : *packages) {
    auto signature =
        signer_.Sign(GrantText(package.project, package.group, package.name, expires_at));
    if (!signature) return std::unexpected(signature.error());
    grants.push_back(UrlGrant{std::move(package), expires_at, std::move(*signature)});
  }
  return grants;
}

Result<void> UrlGrants::Check(const std::string& project, const std::string& group,
                              const std::string& name, std::string_view expires_s,
                              std::string_view signature) {
  std::int64_t expires_at = 0;
  const auto* end = expires_s.data() + expires_s.size();
  if (expires_s.empty() || std::from_chars(expires_s.data(), end, expires_at).ptr != end)
    return Fail(ErrorCode::kForbidden, "The presigned URL is malformed: bad expiry.");
  if (clock_.NowMs() / 1000 >= expires_at)
    return Fail(ErrorCode::kForbidden, "The presigned URL has expired; ask for a new one.");
  auto valid = signer_.Verify(GrantText(project, group, name, expires_at), signature);
  if (!valid) return std::unexpected(valid.error());
  if (!*valid)
    return Fail(ErrorCode::kForbidden,
                "The presigned URL's signature is not valid for this package (altered, for "
                "another package, or revoked by a key rotation).");
  return {};
}

}  // namespace dlipkg
