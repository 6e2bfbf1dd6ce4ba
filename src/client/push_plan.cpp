#include "client/push_plan.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>
#include <system_error>

#include "domain/names.hpp"

namespace dlipkg::client {
namespace {

std::string Lower(std::string_view text) {
  std::string lower(text);
  std::ranges::transform(lower, lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return lower;
}

}  // namespace

bool IsRemoteSource(std::string_view argument) {
  const auto lower = Lower(argument.substr(0, 8));
  return lower.starts_with("http://") || lower.starts_with("https://") ||
         lower.starts_with("obs://") || lower.starts_with("s3://");
}

std::string DefaultKind(std::string_view name) {
  const auto lower = Lower(name);
  for (const char* ext : {".py", ".zip", ".egg", ".whl"})
    if (lower.ends_with(ext)) return "pyFile";
  if (lower.ends_with(".jar")) return "jar";
  return "file";
}

std::string PackageNameOf(std::string_view argument) {
  if (IsRemoteSource(argument)) {
    argument = argument.substr(0, argument.find_first_of("?#"));
    const auto scheme_end = argument.find("://");
    argument.remove_prefix(scheme_end + 3);
    const auto slash = argument.find('/');
    if (slash == std::string_view::npos) return "";  // only a host or bucket
    argument.remove_prefix(slash);
    // The server names a package after the decoded last segment; so does the plan.
    const auto last = argument.substr(argument.rfind('/') + 1);
    return PercentDecode(last).value_or(std::string(last));
  }
  return std::filesystem::path(argument).filename().string();
}

PushPlan PlanPush(const std::vector<std::string>& arguments, std::string_view kind) {
  PushPlan plan;
  std::set<std::string> names;
  for (const auto& argument : arguments) {
    PushItem item{.argument = argument, .remote = IsRemoteSource(argument)};
    item.name = PackageNameOf(argument);
    if (auto valid = ParseResourceName(item.name); !valid) {
      plan.error = "'" + argument + "' does not name a package: " + valid.error().message;
      return plan;
    }
    if (!names.insert(item.name).second) {
      plan.error = "two arguments would both be named '" + item.name + "'";
      return plan;
    }
    item.kind = kind.empty() ? DefaultKind(item.name) : std::string(kind);
    if (!item.remote) {
      std::error_code ec;
      const auto status = std::filesystem::status(argument, ec);
      if (ec || !std::filesystem::is_regular_file(status)) {
        plan.error = "'" + argument +
                     "' is not a readable file (nor an http(s)://, obs:// or "
                     "s3:// URL)";
        return plan;
      }
      item.size = static_cast<std::int64_t>(std::filesystem::file_size(argument, ec));
    }
    plan.items.push_back(std::move(item));
  }
  return plan;
}

}  // namespace dlipkg::client
