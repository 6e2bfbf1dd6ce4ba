// libFuzzer target: S3 XML answers (error documents) as the object-store client reads them.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "adapters/s3/s3_request.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)dlipkg::S3ErrorCode(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
