// ls, show, rm, chown, wait and spark-args: the subcommands over package metadata and URLs.
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <iostream>
#include <thread>

#include "client/command_util.hpp"
#include "client/commands.hpp"
#include "client/progress.hpp"

namespace dlipkg::client {
namespace json = boost::json;

ExitStatus Report(const Failure& failure) {
  std::cerr << "dlipkg: " << failure.message << "\n" << std::flush;
  return failure.status;
}

std::optional<std::pair<std::string, std::string>> ParseTag(const std::string& text) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) return std::nullopt;
  return std::pair{text.substr(0, eq), text.substr(eq + 1)};
}

std::optional<std::int64_t> ParseDuration(const std::string& text) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || value <= 0) return std::nullopt;
  const std::string_view unit(end, text.data() + text.size() - end);
  const std::int64_t scale = unit.empty() || unit == "s" ? 1
                             : unit == "m"               ? 60
                             : unit == "h"               ? 3600
                             : unit == "d"               ? 86400
                                                         : 0;
  if (scale == 0 || value > (std::int64_t{1} << 40) / scale) return std::nullopt;
  return value * scale;
}

namespace {

std::vector<std::string> Row(const json::object& package, const std::string& group) {
  const auto size = Int(package, "size");
  return {group.empty() ? "-" : group,
          Str(package, "resource_name"),
          Str(package, "resource_type"),
          Str(package, "status"),
          size < 0 || Str(package, "sha256").empty() ? "-" : FormatBytes(size),
          Str(package, "owner"),
          FormatTime(Int(package, "update_time"))};
}

const json::object* FindGroup(const json::object& listing, const std::string& group) {
  if (const auto* groups = listing.if_contains("groups"); groups && groups->is_array())
    for (const auto& entry : groups->as_array())
      if (entry.is_object() && Str(entry.as_object(), "group_name") == group)
        return &entry.as_object();
  return nullptr;
}

void ForEach(const json::value* array, auto&& visit) {
  if (array == nullptr || !array->is_array()) return;
  for (const auto& entry : array->as_array())
    if (entry.is_object()) visit(entry.as_object());
}

std::string JoinTags(const std::vector<std::string>& tags) {
  std::string joined;
  for (const auto& tag : tags) joined += (joined.empty() ? "" : ",") + tag;
  return joined;
}

}  // namespace

ExitStatus RunList(DliClient& dli, const ClientOptions& options) {
  auto listing = dli.List(options.kind, JoinTags(options.tags));
  if (!listing) return Report(listing.error());
  const json::object* group = nullptr;
  if (!options.group().empty()) {
    group = FindGroup(*listing, options.group());
    if (group == nullptr)
      return Report(
          {ExitStatus::kNotFound,
           "group " + options.group() + " has no packages" +
               (options.kind.empty() && options.tags.empty() ? "" : " matching the filter")});
  }
  if (options.json) {
    std::cout << json::serialize(group ? json::value(*group) : json::value(*listing)) << "\n";
    return ExitStatus::kOk;
  }
  std::vector<std::vector<std::string>> rows{
      {"GROUP", "NAME", "TYPE", "STATUS", "SIZE", "OWNER", "UPDATED"}};
  if (group == nullptr)
    ForEach(listing->if_contains("resources"),
            [&](const json::object& p) { rows.push_back(Row(p, "")); });
  const auto add_group = [&](const json::object& g) {
    ForEach(g.if_contains("details"),
            [&](const json::object& p) { rows.push_back(Row(p, Str(g, "group_name"))); });
  };
  if (group != nullptr)
    add_group(*group);
  else
    ForEach(listing->if_contains("groups"), add_group);
  std::cout << Table(rows) << std::flush;
  return ExitStatus::kOk;
}

ExitStatus RunShow(DliClient& dli, const ClientOptions& options) {
  auto package = dli.Show(options.arguments.front(), options.group());
  if (!package) return Report(package.error());
  if (options.json) {
    std::cout << json::serialize(*package) << "\n";
    return ExitStatus::kOk;
  }
  std::string tags;
  ForEach(package->if_contains("tags"), [&](const json::object& tag) {
    tags += (tags.empty() ? "" : ", ") + Str(tag, "key") + "=" + Str(tag, "value");
  });
  const auto size = Int(*package, "size");
  std::vector<std::vector<std::string>> rows{
      {"name:", Str(*package, "resource_name")},
      {"group:", Str(*package, "group_name").empty() ? "-" : Str(*package, "group_name")},
      {"type:", Str(*package, "resource_type")},
      {"status:", Str(*package, "status")},
      {"size:", size < 0 ? "-" : std::to_string(size) + " (" + FormatBytes(size) + ")"},
      {"sha256:", Str(*package, "sha256").empty() ? "-" : Str(*package, "sha256")},
      {"owner:", Str(*package, "owner")},
      {"created:", FormatTime(Int(*package, "create_time"))},
      {"updated:", FormatTime(Int(*package, "update_time"))},
      {"tags:", tags.empty() ? "-" : tags}};
  if (const auto reason = Str(*package, "status_reason"); !reason.empty())
    rows.push_back({"reason:", reason});
  std::cout << Table(rows) << std::flush;
  return ExitStatus::kOk;
}

ExitStatus RunRemove(DliClient& dli, const ClientOptions& options) {
  const auto& name = options.arguments.front();
  if (auto done = dli.Delete(name, options.group()); !done) return Report(done.error());
  if (!options.quiet)
    std::cout << "removed " << name
              << (options.group().empty() ? "" : " from group " + options.group()) << "\n";
  return ExitStatus::kOk;
}

ExitStatus RunChown(DliClient& dli, const ClientOptions& options) {
  const auto& user = options.arguments.front();
  const std::string name = options.arguments.size() > 1 ? options.arguments[1] : "";
  if (options.group().empty() && name.empty())
    return Report({ExitStatus::kUsage, "chown needs --group G, a package NAME, or both"});
  if (auto done = dli.ChangeOwner(user, options.group(), name); !done) return Report(done.error());
  if (!options.quiet) {
    const std::string what = name.empty()              ? "group " + options.group()
                             : options.group().empty() ? name
                                                       : name + " in group " + options.group();
    std::cout << what << " now belongs to " << user << "\n";
  }
  return ExitStatus::kOk;
}

// ---- wait ----------------------------------------------------------------------------------

namespace {

// The current package objects wait watches: the named ones, or the whole group's.
Outcome<std::vector<json::object>> Watched(DliClient& dli, const ClientOptions& options) {
  std::vector<json::object> packages;
  if (options.arguments.empty()) {
    auto listing = dli.List("", "");
    if (!listing) return std::unexpected(listing.error());
    const auto* group = FindGroup(*listing, options.group());
    if (group == nullptr)
      return std::unexpected(
          Failure{ExitStatus::kNotFound, "DLI.0002: group " + options.group() + " does not exist"});
    ForEach(group->if_contains("details"), [&](const json::object& p) { packages.push_back(p); });
    return packages;
  }
  for (const auto& name : options.arguments) {
    auto package = dli.Show(name, options.group());
    if (!package) return std::unexpected(package.error());
    packages.push_back(std::move(*package));
  }
  return packages;
}

}  // namespace

ExitStatus RunWait(DliClient& dli, const ClientOptions& options) {
  if (options.arguments.empty() && options.group().empty())
    return Report({ExitStatus::kUsage, "wait needs --group G, package names, or both"});
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  auto poll = std::chrono::milliseconds(200);
  std::FILE* out = ProgressStream(options);
  for (;;) {
    auto packages = Watched(dli, options);
    if (!packages) return Report(packages.error());
    std::vector<std::string> uploading;
    for (const auto& p : *packages)
      if (Str(p, "status") == "UPLOADING") uploading.push_back(Str(p, "resource_name"));
    const std::chrono::duration<double> elapsed = Clock::now() - start;
    if (uploading.empty()) {
      if (out) std::fprintf(out, "\r\x1b[K");
      ExitStatus status = ExitStatus::kOk;
      std::vector<std::vector<std::string>> rows{{"NAME", "STATUS", "REASON"}};
      for (const auto& p : *packages) {
        rows.push_back({Str(p, "resource_name"), Str(p, "status"), Str(p, "status_reason")});
        if (Str(p, "status") == "FAILED")
          status = Report({ExitStatus::kFailed,
                           Str(p, "resource_name") + " FAILED: " + Str(p, "status_reason")});
      }
      if (!options.quiet) std::cout << Table(rows) << std::flush;
      return status;
    }
    if (options.timeout_s > 0 && elapsed.count() >= options.timeout_s) {
      if (out) std::fprintf(out, "\n");
      std::string names;
      for (const auto& name : uploading) names += (names.empty() ? "" : ", ") + name;
      return Report({ExitStatus::kTimeout, "timed out after " + FormatEta(options.timeout_s) +
                                               "; still UPLOADING: " + names});
    }
    if (out) {
      std::fprintf(out, "\r\x1b[Kwaiting %s: %zu of %zu UPLOADING (%s)",
                   FormatEta(elapsed.count()).c_str(), uploading.size(), packages->size(),
                   uploading.front().c_str());
      std::fflush(out);
    }
    std::this_thread::sleep_for(poll);
    poll = std::min(poll * 3 / 2, std::chrono::milliseconds(2000));
  }
}

// ---- spark-args ----------------------------------------------------------------------------

ExitStatus RunSparkArgs(DliClient& dli, const ClientOptions& options) {
  std::vector<std::string> py_files, jars, files;
  for (const auto& group : options.groups) {
    auto urls = dli.PresignUrls(group, options.expires_s);
    if (!urls) return Report(urls.error());
    const json::value all(std::move(*urls));
    ForEach(&all, [&](const json::object& u) {
      const auto type = Str(u, "resource_type");
      auto& list = type == "pyFile" ? py_files : type == "jar" ? jars : files;
      list.push_back(Str(u, "url"));
    });
  }
  const auto join = [](const std::vector<std::string>& urls) {
    std::string joined;
    for (const auto& url : urls) joined += (joined.empty() ? "" : ",") + url;
    return joined;
  };
  const bool conf = options.format == "conf";
  std::string text;
  const auto emit = [&](const char* flag, const char* key, const std::vector<std::string>& urls) {
    if (urls.empty()) return;
    if (conf)
      text += std::string(key) + "=" + join(urls) + "\n";
    else
      text += (text.empty() ? "" : " ") + std::string(flag) + " " + join(urls);
  };
  emit("--py-files", "spark.submit.pyFiles", py_files);
  emit("--jars", "spark.jars", jars);
  emit("--files", "spark.files", files);
  std::cout << text << (conf || text.empty() ? "" : "\n") << std::flush;
  return ExitStatus::kOk;
}

}  // namespace dlipkg::client
