// libFuzzer target: S3 XML answers (errors, listings, multipart upload ids) as the object-store
// clients read them.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "adapters/s3/s3_xml.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view xml(reinterpret_cast<const char*>(data), size);
  (void)dlipkg::S3ErrorCode(xml);
  (void)dlipkg::ParseListObjects(xml);
  (void)dlipkg::ParseListUploads(xml);
  (void)dlipkg::ParseUploadId(xml);
  return 0;
}
