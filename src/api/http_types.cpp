#include "api/http_types.hpp"

#include <algorithm>
#include <cctype>

#include "domain/names.hpp"

namespace dlipkg::api {

std::optional<std::string_view> Request::Header(std::string_view name) const {
  const auto same = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) ==
                    std::tolower(static_cast<unsigned char>(y));
           });
  };
  for (const auto& [key, value] : headers)
    if (same(key, name)) return Trim(value);
  return std::nullopt;
}

}  // namespace dlipkg::api
