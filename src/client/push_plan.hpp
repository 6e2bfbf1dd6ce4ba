// What `dlipkg push` sends where: each argument is a source URL for the server to fetch (sent in
// `paths`) or a local file to stream through the direct-upload route, with its package kind.
// Used by the push command; pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dlipkg::client {

// http://, https://, obs:// and s3:// (case-insensitive scheme): fetched by the server.
bool IsRemoteSource(std::string_view argument);

// The kind a package gets when --kind is not given, from its name's extension (case-insensitive):
// .py .zip .egg .whl -> "pyFile", .jar -> "jar", anything else -> "file".
std::string DefaultKind(std::string_view name);

// The package name a path or URL gets: its last path segment ("dir/a.py" -> "a.py",
// "https://h/x/b.jar?v=1" -> "b.jar"). "" when there is none.
std::string PackageNameOf(std::string_view argument);

struct PushItem {
  std::string argument;    // as given on the command line
  std::string name;        // the package name
  std::string kind;        // --kind or DefaultKind(name)
  bool remote = false;     // a URL for the server; otherwise a local file
  std::int64_t size = -1;  // local files: the size when planned
};

struct PushPlan {
  std::vector<PushItem> items;  // in command-line order
  std::string error;            // non-empty: the plan is refused (usage error), nothing is sent
};

// Checks every argument before anything is sent: local files must be readable regular files,
// names valid and not repeated. `kind` empty: DefaultKind per item.
PushPlan PlanPush(const std::vector<std::string>& arguments, std::string_view kind);

}  // namespace dlipkg::client
