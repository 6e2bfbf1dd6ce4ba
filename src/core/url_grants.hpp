// Presigned read URLs as a use case: grants reading one READY package until an expiry, signed
// by the UrlSigner port (an HMAC with a key all instances share), and checks a grant a client
// presents. The API layer turns a grant into a /files/... URL; this class knows nothing of URLs.
// Thread-safe (the ports are); blocking (it reads the metadata store).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "domain/error.hpp"
#include "domain/records.hpp"
#include "ports/clock.hpp"
#include "ports/metadata_store.hpp"
#include "ports/url_signer.hpp"

namespace dlipkg {

inline constexpr std::int64_t kDefaultUrlLifetimeS = 3600;

struct UrlGrant {
  PackageRecord package;
  std::int64_t expires_at_s = 0;  // Unix seconds
  std::string signature;          // lower-case hex
};

struct GrantRequest {
  std::string project;
  std::optional<std::string> group;               // nullopt: ungrouped packages
  std::optional<std::vector<std::string>> names;  // nullopt: every READY package of the group
  std::optional<std::int64_t> expires_in_s;       // default kDefaultUrlLifetimeS
};

class UrlGrants {
 public:
  // `max_lifetime_s` caps expires_in (--max-url-lifetime).
  UrlGrants(MetadataStore& metadata, UrlSigner& signer, const Clock& clock,
            std::int64_t max_lifetime_s);

  // Errors: kBadRequest (neither group nor names, a bad name, expires_in not positive, a named
  // package not READY), kNotFound (group or named package absent), kInternal.
  Result<std::vector<UrlGrant>> Grant(const GrantRequest& request);
  // Whether a URL's expiry and signature grant GET/HEAD of (project, group, name) now.
  // kForbidden when expired, malformed, or not signed for it under the current key.
  Result<void> Check(const std::string& project, const std::string& group, const std::string& name,
                     std::string_view expires_s, std::string_view signature);

 private:
  Result<std::vector<PackageRecord>> Packages(const GrantRequest& request);
  static std::string GrantText(const std::string& project, const std::string& group,
                               const std::string& name, std::int64_t expires_at_s);

  MetadataStore& metadata_;
  UrlSigner& signer_;
  const Clock& clock_;
  const std::int64_t max_lifetime_s_;
};

}  // namespace dlipkg
