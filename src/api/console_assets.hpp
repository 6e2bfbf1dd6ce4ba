// The web console's static files (console/ in the repository), embedded in the binary at build
// time by cmake/embed_files.cmake; the console routes serve them. Immutable data, so safe from
// any thread.
#pragma once

#include <span>
#include <string_view>

namespace dlipkg::api {

struct EmbeddedFile {
  std::string_view path;  // relative to console/, e.g. "index.html", "app.js"
  std::string_view data;
};

// Every embedded file, in a fixed order. Defined in the generated console_assets.cpp.
std::span<const EmbeddedFile> EmbeddedConsoleFiles();

}  // namespace dlipkg::api
