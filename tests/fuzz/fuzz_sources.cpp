// libFuzzer target: URL and source-policy parsing: IP literals, allow/deny entries (hosts and
// CIDRs), the object-stores file, and canonical object URLs built from a bucket and key.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "adapters/s3/object_stores.hpp"
#include "adapters/sources/source_policy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  using namespace dlipkg;
  if (auto ip = ParseIpAddress(text)) (void)IsRestricted(*ip);
  (void)AddressPolicy::Create({std::string(text)}, {std::string(text)});
  if (auto stores = ParseObjectStores(text); stores && !stores->empty()) {
    (void)CanonicalObjectUrl((*stores)[0], "bucket", text);
  }
  (void)SigV4Encode(text, true);
  return 0;
}
