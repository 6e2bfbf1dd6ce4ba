// SourceFetcher on libcurl: http(s), obs:// and s3:// through declared object stores (signed
// with AWS SigV4 by libcurl), and file:// below allowed roots. The policy judges the address
// actually connected to, after resolution, so numeric tricks (2130706433, 0x7f000001, 127.1) and
// DNS answers pointing inside are caught alike; environment proxies are ignored for that reason.
// Thread-safe: each Fetch uses its own handle.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "adapters/s3/object_stores.hpp"
#include "ports/source_fetcher.hpp"

namespace dlipkg {

struct SourcePolicy {
  // Host names or CIDRs ("127.0.0.1", "10.0.0.0/8", "::1", "files.example.com") whose
  // addresses may be connected to even though they are loopback, private, link-local or
  // unspecified. Public addresses are always allowed.
  std::vector<std::string> allow_sources{};
  // Host names or CIDRs never connected to, public or not, whatever allow_sources says.
  std::vector<std::string> deny_sources{};
  // Directories below which file:// URLs may be read (after resolving symlinks). Empty: none.
  std::vector<std::filesystem::path> allow_file_roots{};
  // Where obs://, s3:// and OBS-style https URLs go. A store's endpoint is trusted for requests
  // to that store only (its address may be loopback or private), never for plain URLs.
  std::vector<ObjectStore> object_stores{};
  std::int64_t max_object_bytes = 5LL << 30;  // the largest object an S3 CopyObject takes
  std::chrono::milliseconds connect_timeout{10'000};
  // From the start of each request (connecting included) to the response's first byte.
  std::chrono::milliseconds first_byte_timeout{30'000};
  // The low-speed limit: a transfer averaging fewer than low_speed_bytes_per_s over
  // stall_timeout fails (CURLOPT_LOW_SPEED_LIMIT/TIME), so a source trickling a byte now and
  // then cannot hold a fetch slot for the whole total_timeout. 1: only a silent source fails.
  std::chrono::milliseconds stall_timeout{30'000};
  std::int64_t low_speed_bytes_per_s = 1;
  std::chrono::milliseconds total_timeout{3'600'000};
  int max_redirects = 3;  // followed only to the same scheme, host and port; never for stores
};

// Whether an IP literal (v4 or v6) is in the default-refused ranges (loopback, RFC 1918,
// fc00::/7, link-local, unspecified, IPv4-mapped forms of those). nullopt: not an IP literal.
std::optional<bool> IsRestrictedAddress(const std::string& ip);

class CurlFetcher final : public SourceFetcher {
 public:
  // Validates the policy (CIDRs parse, roots exist, stores are sound). Errors: kBadRequest
  // naming the entry (never a secret).
  static Result<std::unique_ptr<CurlFetcher>> Create(SourcePolicy policy);
  ~CurlFetcher() override;
  Result<std::int64_t> Fetch(std::string_view url, ByteSink& sink) override;

 private:
  struct Impl;
  explicit CurlFetcher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dlipkg
