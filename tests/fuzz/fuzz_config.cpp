// libFuzzer target: the configuration file (TOML, [serve] table), read by the real command-line
// parser from a temporary file. Any file must give a configuration or a usage error.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

#include "app/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string file = "/tmp/dlipkg-fuzz-config-" + std::to_string(::getpid()) + ".toml";
  std::ofstream(file, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  const char* argv[] = {"dlipkg", "serve", "--config", file.c_str()};
  (void)dlipkg::app::ParseCommandLine(4, const_cast<char**>(argv));
  return 0;
}
