// Validated values of the resources API: a project, group, package or owner name, a source URL
// with the package name it gives, a request's sources and tags. Each is made only by its Parse,
// so holding one proves it was validated: the API parses a request into these once, at the
// edge, and the core takes them and never checks again. Immutable values; thread-safe to share.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "domain/error.hpp"
#include "domain/names.hpp"

namespace dlipkg {

// A string that passed `kParse` (one of the Parse* functions of names.hpp), normalised as it
// returned it (a group name trimmed, ...).
template <Result<std::string> (*kParse)(std::string_view)>
class Validated {
 public:
  static Result<Validated> Parse(std::string_view text) {
    auto value = kParse(text);
    if (!value) return std::unexpected(value.error());
    return Validated(std::move(*value));
  }
  const std::string& str() const { return value_; }
  friend bool operator==(const Validated&, const Validated&) = default;

 private:
  explicit Validated(std::string value) : value_(std::move(value)) {}
  std::string value_;
};

using ProjectId = Validated<&ParseProjectId>;
using GroupName = Validated<&ParseGroupName>;
using ResourceName = Validated<&ParseResourceName>;
using OwnerName = Validated<&ParseOwnerName>;

// A source to fetch and the package name its last path segment gives (ResourceNameFromUrl),
// brought to `form` before it is validated. The URL itself is kept byte for byte: it names an
// object in a store, which compares keys byte for byte.
class SourceUrl {
 public:
  static Result<SourceUrl> Parse(std::string_view url, const NameForm& form = {});
  const std::string& url() const { return url_; }
  const ResourceName& name() const { return name_; }

 private:
  SourceUrl(std::string url, ResourceName name) : url_(std::move(url)), name_(std::move(name)) {}
  std::string url_;
  ResourceName name_;
};

inline constexpr std::size_t kMaxPathsPerRequest = 100;

// The sources of one upload: 1-100, each giving a distinct package name (compared after
// `form`). Errors name the first bad path, in request order.
class SourceList {
 public:
  static Result<SourceList> Parse(const std::vector<std::string>& urls, const NameForm& form = {});
  const std::vector<SourceUrl>& items() const { return items_; }
  std::vector<std::string> Urls() const;
  std::vector<std::string> Names() const;

 private:
  explicit SourceList(std::vector<SourceUrl> items) : items_(std::move(items)) {}
  std::vector<SourceUrl> items_;
};

// A SHA-256 digest: 64 hex digits, held in lower case (ParseSha256). `what` names the field
// in the error message.
class Sha256Hex {
 public:
  static Result<Sha256Hex> Parse(std::string_view text, std::string_view what);
  const std::string& str() const { return value_; }
  friend bool operator==(const Sha256Hex&, const Sha256Hex&) = default;

 private:
  explicit Sha256Hex(std::string value) : value_(std::move(value)) {}
  std::string value_;
};

// The tags of one upload, as ValidateTags accepts them.
class TagList {
 public:
  static Result<TagList> Parse(std::vector<Tag> tags);
  TagList() = default;  // no tags
  const std::vector<Tag>& items() const { return items_; }

 private:
  explicit TagList(std::vector<Tag> items) : items_(std::move(items)) {}
  std::vector<Tag> items_;
};

}  // namespace dlipkg
