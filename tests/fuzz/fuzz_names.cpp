// libFuzzer target: the name rules (resource, group, owner, project, tags) and the resource name
// taken from a source URL. A name accepted once must be accepted again unchanged (idempotence).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "domain/names.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  using namespace dlipkg;
  if (auto name = ParseResourceName(text); name && *ParseResourceName(*name) != *name) std::abort();
  if (auto group = ParseGroupName(text); group && *ParseGroupName(*group) != *group) std::abort();
  (void)ParseOwnerName(text);
  (void)ParseProjectId(text);
  (void)PercentDecode(text);
  if (auto name = ResourceNameFromUrl(text); name && !ParseResourceName(*name)) std::abort();
  const auto cut = text.find('=');
  std::vector<Tag> tags{Tag{std::string(text.substr(0, cut)),
                            cut == std::string_view::npos ? "" : std::string(text.substr(cut + 1))}};
  (void)ValidateTags(tags);
  return 0;
}
