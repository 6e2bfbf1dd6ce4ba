// Validated names of the DLI resources API (docs/api.md, "Conventions").
// Each Parse* returns the normalised value or a kBadRequest error naming the rule broken.
// Pure functions; thread-safe.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/error.hpp"

namespace dlipkg {

enum class PackageKind { kJar, kPyFile, kFile, kModelFile };
enum class PackageStatus { kUploading, kReady, kFailed };

std::string_view ToString(PackageKind kind);      // "jar", "pyFile", "file", "modelFile"
std::string_view ToString(PackageStatus status);  // "UPLOADING", "READY", "FAILED"
std::optional<PackageKind> ParseKind(std::string_view text);
std::optional<PackageStatus> ParseStatus(std::string_view text);

// 1-64 letters and digits.
Result<std::string> ParseProjectId(std::string_view text);
// Trimmed, then 1-64 of letters, digits, '.', '_', '-'.
Result<std::string> ParseGroupName(std::string_view text);
// 1-128 characters; letters (any script), digits, '_', '!', '-', '.', '~', '+', '%', ' ';
// no leading '.', no leading or trailing space, valid UTF-8, no '/' or control characters.
Result<std::string> ParseResourceName(std::string_view text);
// 64 hex digits (either case), returned in lower case. `what` names the field in the message.
Result<std::string> ParseSha256(std::string_view text, std::string_view what);
// 5-32 of letters, digits, '_', '-'; not starting with a digit.
Result<std::string> ParseOwnerName(std::string_view text);

struct Tag {
  std::string key;
  std::string value;
  friend bool operator==(const Tag&, const Tag&) = default;
};
inline constexpr std::size_t kMaxTagsPerRequest = 20;
// At most 20; keys unique, 1-128 chars, not starting with "_sys_"; values 0-255 chars;
// letters (any script), digits, spaces and _ . : + - @; no leading/trailing space.
Result<void> ValidateTags(const std::vector<Tag>& tags);

// Brings a name to the one form names are stored and compared in, or refuses it: the Unicode
// rules the domain cannot judge alone (the API passes its TextRules port). Empty: names are
// taken as they are written.
using NameForm = std::function<Result<std::string>(std::string_view name)>;

// Percent-decodes once. Fails on a malformed escape ("%4", "%zz").
std::optional<std::string> PercentDecode(std::string_view text);

// The resource name a source URL gives: its last path segment (query and fragment dropped),
// percent-decoded, brought to `form`, validated by ParseResourceName. The message names the
// path, except a refusal by `form`, which names the code point (echoing the path would show it).
Result<std::string> ResourceNameFromUrl(std::string_view url, const NameForm& form = {});

std::string_view Trim(std::string_view text);
// "a/b//c" split on '/' -> {"a", "b", "", "c"}; the views point into `text`.
std::vector<std::string_view> Split(std::string_view text, char separator);

}  // namespace dlipkg
