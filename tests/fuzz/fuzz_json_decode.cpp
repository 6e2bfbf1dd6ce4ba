// libFuzzer target: the JSON request decoders (uploads, typed uploads, owner changes, modules).
// Any input must give a value or a clear error: no crash, no sanitizer report.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "api/json_codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)dlipkg::api::DecodeUpload(text);
  (void)dlipkg::api::DecodeTypedUpload(text);
  (void)dlipkg::api::DecodeOwnerChange(text);
  (void)dlipkg::api::DecodeModules(text);
  return 0;
}
