#include "domain/values.hpp"

#include <set>

namespace dlipkg {

Result<Sha256Hex> Sha256Hex::Parse(std::string_view text, std::string_view what) {
  auto digest = ParseSha256(text, what);
  if (!digest) return std::unexpected(digest.error());
  return Sha256Hex(std::move(*digest));
}

Result<SourceUrl> SourceUrl::Parse(std::string_view url, const NameForm& form) {
  auto name = ResourceNameFromUrl(url, form);
  if (!name) return std::unexpected(name.error());
  auto validated = ResourceName::Parse(*name);
  if (!validated) return std::unexpected(validated.error());
  return SourceUrl(std::string(url), std::move(*validated));
}

Result<SourceList> SourceList::Parse(const std::vector<std::string>& urls, const NameForm& form) {
  if (urls.empty()) return Fail(ErrorCode::kBadRequest, "paths must not be empty.");
  if (urls.size() > kMaxPathsPerRequest)
    return Fail(ErrorCode::kBadRequest,
                "paths has " + std::to_string(urls.size()) + " entries; at most 100 are allowed.");
  std::vector<SourceUrl> items;
  std::set<std::string> seen;
  for (const auto& url : urls) {
    auto source = SourceUrl::Parse(url, form);
    if (!source) return std::unexpected(source.error());
    if (!seen.insert(source->name().str()).second)
      return Fail(ErrorCode::kBadRequest, "Duplicate resource name '" + source->name().str() +
                                              "' in paths: each package needs a distinct name.");
    items.push_back(std::move(*source));
  }
  return SourceList(std::move(items));
}

std::vector<std::string> SourceList::Urls() const {
  std::vector<std::string> urls;
  for (const auto& item : items_) urls.push_back(item.url());
  return urls;
}

std::vector<std::string> SourceList::Names() const {
  std::vector<std::string> names;
  for (const auto& item : items_) names.push_back(item.name().str());
  return names;
}

Result<TagList> TagList::Parse(std::vector<Tag> tags) {
  if (auto valid = ValidateTags(tags); !valid) return std::unexpected(valid.error());
  return TagList(std::move(tags));
}

}  // namespace dlipkg
