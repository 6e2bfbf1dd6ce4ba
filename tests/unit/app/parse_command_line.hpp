// Test helper: runs ParseCommandLine on an argument list, as `dlipkg <args...>` would.
#pragma once

#include <string>
#include <vector>

#include "app/config.hpp"

namespace dlipkg::app::testing {

inline Command Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "dlipkg");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return ParseCommandLine(static_cast<int>(argv.size()), argv.data());
}

}  // namespace dlipkg::app::testing
