// libFuzzer target: the credentials file (users, projects, access keys, tokens).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "adapters/auth/credential_store.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)dlipkg::ParseCredentials(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
