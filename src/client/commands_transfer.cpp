// push and get: the subcommands that move package bytes.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>

#include "adapters/common/posix_file.hpp"
#include "adapters/common/sha256.hpp"
#include "adapters/common/xxh3_checksum.hpp"
#include "client/command_util.hpp"
#include "client/commands.hpp"
#include "client/progress.hpp"
#include "client/push_plan.hpp"

namespace dlipkg::client {
namespace json = boost::json;
namespace {

constexpr std::size_t kChunkBytes = 1 << 20;

Failure LocalFailure(std::string message) { return {ExitStatus::kFailed, std::move(message)}; }

// One pass over the file: its SHA-256, so the server can check the bytes it stores are the ones
// hashed here and the signature covers the body.
Outcome<std::string> HashFile(int fd, std::int64_t size, const std::string& shown) {
  Sha256Hasher hasher;
  std::vector<char> buffer(kChunkBytes);
  std::int64_t done = 0;
  while (done < size) {
    const auto got = ::pread(fd, buffer.data(), buffer.size(), done);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0)
      return std::unexpected(LocalFailure("cannot read " + shown + ": " +
                                          (got < 0 ? ErrnoText(errno) : "it got shorter")));
    hasher.Update(std::span<const char>(buffer.data(), static_cast<std::size_t>(got)));
    done += got;
  }
  return hasher.FinishHex();
}

struct Pushed {
  std::vector<json::object> packages;  // for the summary, in order
};

std::vector<std::pair<std::string, std::string>> ParsedTags(const ClientOptions& options) {
  std::vector<std::pair<std::string, std::string>> tags;
  for (const auto& tag : options.tags) tags.push_back(*ParseTag(tag));  // validated by the CLI
  return tags;
}

// The package a push made holds the bytes read here, or the push fails and removes it.
Outcome<json::object> CheckReceived(DliClient& dli, const ClientOptions& options,
                                    const PushItem& item, const std::optional<std::string>& sent,
                                    StoredContent stored) {
  const std::string& received = stored.received_xxh3;
  if (sent && received == *sent) return std::move(stored.package);
  const bool removed = dli.Delete(item.name, options.group()).has_value();
  const std::string what =
      received.empty()
          ? "the server did not say which bytes it received (is it older than this "
            "client?)"
          : "the server received bytes with XXH3-128 " + received + " but " +
                (sent ? "the file read as " + *sent : std::string("the file was not read whole")) +
                " (altered on the way?)";
  return std::unexpected(LocalFailure(
      item.argument + ": " + what + "; " +
      (removed ? "the package was removed" : "removing the package failed: remove it by hand")));
}

// XXH3-128 of an upload, fed by the transport as it reads the file: one pass over the bytes.
// A new attempt starts again at offset 0; bytes out of order (which curl never produces) make
// the checksum unusable rather than wrong.
class UploadChecksum {
 public:
  void Feed(std::int64_t offset, std::span<const char> bytes) {
    if (offset == 0 && next_ != 0) {
      checksum_ = NewXxh3Checksum();
      next_ = 0;
      broken_ = false;
    }
    if (offset != next_) broken_ = true;
    if (broken_) return;
    checksum_->Update(bytes);
    next_ += static_cast<std::int64_t>(bytes.size());
  }
  // The hex digest if exactly `size` bytes were seen in order.
  std::optional<std::string> Finish(std::int64_t size) {
    if (broken_ || next_ != size) return std::nullopt;
    return checksum_->FinishHex();
  }

 private:
  std::unique_ptr<BodyChecksum> checksum_ = NewXxh3Checksum();
  std::int64_t next_ = 0;
  bool broken_ = false;
};

// The file is read once (UNSIGNED-PAYLOAD, as the SDKs send streams), through XXH3-128 as it
// streams; the server answers with the XXH3-128 of the bytes it received, and the two must be
// equal. Bytes altered on the way make the push fail, and the package they made is removed.
// XXH3 rather than SHA-256: on two cores a client SHA-256 of every pushed byte competes with
// the server's own, and cost push about a tenth of its speed.
Outcome<json::object> PushFile(DliClient& dli, const ClientOptions& options, const PushItem& item) {
  auto fd = OpenFd(item.argument, O_RDONLY);
  if (!fd)
    return std::unexpected(
        LocalFailure("cannot open " + item.argument + ": " + ErrnoText(fd.error())));
  ::posix_fadvise(fd->Get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  ProgressBar bar(ProgressStream(options), item.name, item.size);
  UploadChecksum checksum;
  auto answer = dli.PutContent(
      {.name = item.name,
       .kind = item.kind,
       .group = options.group(),
       .fd = fd->Get(),
       .size = item.size,
       .progress = [&](std::int64_t done, std::int64_t) { bar.Update(done); },
       .observer = [&](std::int64_t offset,
                       std::span<const char> bytes) { checksum.Feed(offset, bytes); }});
  bar.Finish(answer ? item.size : 0);
  if (!answer) return std::unexpected(answer.error());
  return CheckReceived(dli, options, item, checksum.Finish(item.size), std::move(*answer));
}

// The package objects of `names` in an upload answer's "details".
void CollectDetails(const json::object& answer, const std::set<std::string>& names,
                    std::vector<json::object>& into) {
  const auto* details = answer.if_contains("details");
  if (details == nullptr || !details->is_array()) return;
  for (const auto& detail : details->as_array())
    if (detail.is_object() && names.contains(Str(detail.as_object(), "resource_name")))
      into.push_back(detail.as_object());
}

// URLs go to POST /resources, one call per kind (the route takes one kind per request).
Outcome<void> PushUrls(DliClient& dli, const ClientOptions& options,
                       const std::vector<PushItem>& items, std::vector<json::object>& pushed) {
  std::map<std::string, std::vector<const PushItem*>> by_kind;
  for (const auto& item : items)
    if (item.remote) by_kind[item.kind].push_back(&item);
  for (const auto& [kind, group_items] : by_kind) {
    UploadPathsRequest request{.kind = kind,
                               .group = options.group(),
                               .is_async = options.is_async,
                               .tags = ParsedTags(options)};
    std::set<std::string> names;
    for (const auto* item : group_items) {
      request.paths.push_back(item->argument);
      names.insert(item->name);
    }
    if (ProgressStream(options))
      std::fprintf(stderr, "asking the server to fetch %zu %s package(s)%s\n", request.paths.size(),
                   kind.c_str(), options.is_async ? " (async)" : "");
    auto answer = dli.UploadPaths(request);
    if (!answer) return std::unexpected(answer.error());
    CollectDetails(*answer, names, pushed);
  }
  return {};
}

void PrintSummary(const std::vector<json::object>& packages) {
  std::vector<std::vector<std::string>> rows{{"NAME", "TYPE", "GROUP", "STATUS", "SIZE", "SHA256"}};
  for (const auto& package : packages) {
    const auto size = Int(package, "size");
    const auto sha = Str(package, "sha256");
    const auto group = Str(package, "group_name");
    rows.push_back({Str(package, "resource_name"), Str(package, "resource_type"),
                    group.empty() ? "-" : group, Str(package, "status"),
                    size < 0 || Str(package, "sha256").empty() ? "-" : FormatBytes(size),
                    sha.empty() ? "-" : sha.substr(0, 16)});
  }
  std::cout << Table(rows) << std::flush;
}

// The package objects of a group from the listing.
Outcome<json::array> GroupDetails(DliClient& dli, const std::string& group) {
  auto listing = dli.List("", "");
  if (!listing) return std::unexpected(listing.error());
  if (const auto* groups = listing->if_contains("groups"); groups && groups->is_array())
    for (const auto& entry : groups->as_array())
      if (entry.is_object() && Str(entry.as_object(), "group_name") == group)
        if (const auto* details = entry.as_object().if_contains("details");
            details && details->is_array())
          return details->as_array();
  return std::unexpected(
      Failure{ExitStatus::kNotFound, "DLI.0002: group " + group + " does not exist"});
}

// A local file for --replace: hashed, then sent to /blobs/{sha256} unless the server already
// holds those bytes. The group does not change yet.
Outcome<std::string> StageFile(DliClient& dli, const ClientOptions& options, const PushItem& item) {
  auto fd = OpenFd(item.argument, O_RDONLY);
  if (!fd)
    return std::unexpected(
        LocalFailure("cannot open " + item.argument + ": " + ErrnoText(fd.error())));
  auto sha256 = HashFile(fd->Get(), item.size, item.argument);
  if (!sha256) return std::unexpected(sha256.error());
  auto held = dli.HasBlob(*sha256);
  if (!held) return std::unexpected(held.error());
  ProgressBar bar(ProgressStream(options), item.name, item.size);
  if (!*held) {
    auto sent =
        dli.PutBlob({.fd = fd->Get(),
                     .size = item.size,
                     .sha256 = *sha256,
                     .progress = [&](std::int64_t done, std::int64_t) { bar.Update(done); }});
    if (!sent) {
      bar.Finish(0);
      return std::unexpected(sent.error());
    }
  }
  bar.Finish(item.size);
  return *sha256;
}

// A group name for the URLs of a --replace to be fetched into before the commit.
std::string ScratchGroup(const std::string& group) {
  std::random_device random;
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, "-dlipkg-staging-%08x", random());
  return group.substr(0, 64 - std::strlen(suffix)) + suffix;
}

void DropScratch(DliClient& dli, const std::string& scratch) {
  auto details = GroupDetails(dli, scratch);
  if (!details) return;  // never created: nothing to drop
  for (const auto& detail : *details)
    if (detail.is_object()) (void)dli.Delete(Str(detail.as_object(), "resource_name"), scratch);
}

// --replace: every local file staged as a blob, every URL fetched by the server into a scratch
// group, then one commit that makes the group exactly these packages. Any failure before the
// commit leaves the group as it was.
ExitStatus PushReplace(DliClient& dli, const ClientOptions& options,
                       const std::vector<PushItem>& items) {
  json::array packages;
  for (const auto& item : items) {
    if (item.remote) continue;
    auto sha256 = StageFile(dli, options, item);
    if (!sha256)
      return Report({sha256.error().status, item.name + ": " + sha256.error().message + " (group " +
                                                options.group() + " unchanged)"});
    packages.push_back(json::object{{"name", item.name}, {"kind", item.kind}, {"sha256", *sha256}});
  }
  std::string scratch;
  if (std::ranges::any_of(items, [](const PushItem& item) { return item.remote; })) {
    scratch = ScratchGroup(options.group());
    ClientOptions fetch = options;
    fetch.groups = {scratch};
    std::vector<json::object> fetched;
    if (auto urls = PushUrls(dli, fetch, items, fetched); !urls) {
      DropScratch(dli, scratch);
      return Report({urls.error().status,
                     urls.error().message + " (group " + options.group() + " unchanged)"});
    }
    for (const auto& package : fetched)
      packages.push_back(json::object{{"name", Str(package, "resource_name")},
                                      {"kind", Str(package, "resource_type")},
                                      {"sha256", Str(package, "sha256")}});
  }
  auto group = dli.Commit(options.group(), std::move(packages));
  if (!scratch.empty()) DropScratch(dli, scratch);
  if (!group) return Report(group.error());
  std::vector<json::object> summary;
  std::set<std::string> names;
  for (const auto& item : items) names.insert(item.name);
  CollectDetails(*group, names, summary);
  if (!options.quiet) PrintSummary(summary);
  return ExitStatus::kOk;
}

}  // namespace

ExitStatus RunPush(DliClient& dli, const ClientOptions& options) {
  const auto plan = PlanPush(options.arguments, options.kind);
  if (!plan.error.empty()) return Report({ExitStatus::kUsage, plan.error});
  const bool local_files =
      std::ranges::any_of(plan.items, [](const PushItem& item) { return !item.remote; });
  if (local_files && !options.tags.empty())
    return Report({ExitStatus::kUsage,
                   "--tag applies to URLs only: the direct-upload route of local files takes no "
                   "tags"});
  if (options.replace) return PushReplace(dli, options, plan.items);
  std::vector<json::object> pushed;
  ExitStatus status = ExitStatus::kOk;
  for (const auto& item : plan.items) {
    if (item.remote) continue;
    auto answer = PushFile(dli, options, item);
    if (!answer) {
      status = Report({answer.error().status, item.name + ": " + answer.error().message});
      break;
    }
    pushed.push_back(std::move(*answer));
  }
  if (status == ExitStatus::kOk) {
    if (auto urls = PushUrls(dli, options, plan.items, pushed); !urls)
      status = Report(urls.error());
  }
  if (!pushed.empty() && !options.quiet) PrintSummary(pushed);
  return status;
}

// ---- get -----------------------------------------------------------------------------------

namespace {

// Downloads one package to `destination`: into a temporary file beside it, hashed while
// written, fsynced, and renamed to its name only when the SHA-256 is the package's.
ExitStatus GetOne(DliClient& dli, const ClientOptions& options, const json::object& package,
                  const std::filesystem::path& destination) {
  const auto name = Str(package, "resource_name");
  const auto group = Str(package, "group_name");
  const auto expected = Str(package, "sha256");
  const auto size = Int(package, "size");
  if (expected.empty())
    return Report({ExitStatus::kFailed,
                   name + " has no stored bytes yet (status " + Str(package, "status") + ")"});
  auto temp =
      destination.parent_path() / ("." + destination.filename().string() + ".dlipkg-XXXXXX");
  std::string temp_name = temp.string();
  const int raw_fd = ::mkstemp(temp_name.data());
  if (raw_fd < 0)
    return Report({ExitStatus::kFailed, "cannot create a file in " +
                                            destination.parent_path().string() + ": " +
                                            ErrnoText(errno)});
  UniqueFd fd(raw_fd);
  ::fchmod(fd.Get(), 0644);
  Sha256Hasher hasher;
  int write_errno = 0;
  ProgressBar bar(ProgressStream(options), name, size);
  auto done = dli.Download(
      name, group,
      [&](std::span<const char> bytes) {
        hasher.Update(bytes);
        auto written = WriteAll(fd.Get(), bytes);
        if (!written) write_errno = written.error();
        return written.has_value();
      },
      [&](std::int64_t got, std::int64_t) { bar.Update(got); });
  bar.Finish(done ? size : 0);
  const auto discard = [&](Failure failure) {
    ::unlink(temp_name.c_str());
    return Report(failure);
  };
  if (!done) {
    auto failure = done.error();
    if (write_errno != 0) failure.message = "writing " + temp_name + ": " + ErrnoText(write_errno);
    return discard({failure.status, name + ": " + failure.message});
  }
  const auto actual = hasher.FinishHex();
  if (actual != expected)
    return discard({ExitStatus::kFailed, name +
                                             ": the downloaded bytes do not match the "
                                             "package's SHA-256 (expected " +
                                             expected + ", got " + actual +
                                             "); nothing was written"});
  if (::fsync(fd.Get()) != 0 || ::rename(temp_name.c_str(), destination.c_str()) != 0)
    return discard(
        {ExitStatus::kFailed, "cannot write " + destination.string() + ": " + ErrnoText(errno)});
  if (!options.quiet) std::cout << destination.string() << "\n" << std::flush;
  return ExitStatus::kOk;
}

}  // namespace

ExitStatus RunGet(DliClient& dli, const ClientOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (options.arguments.empty()) {  // a whole group into a directory
    const fs::path dir = options.output.empty() ? "." : options.output;
    fs::create_directories(dir, ec);
    if (!fs::is_directory(dir, ec))
      return Report({ExitStatus::kUsage, "-o " + dir.string() + " is not a directory"});
    auto details = GroupDetails(dli, options.group());
    if (!details) return Report(details.error());
    ExitStatus status = ExitStatus::kOk;
    for (const auto& detail : *details) {
      if (!detail.is_object()) continue;
      const auto& package = detail.as_object();
      const auto result = GetOne(dli, options, package, dir / Str(package, "resource_name"));
      if (result != ExitStatus::kOk) status = result;
    }
    return status;
  }
  const auto& name = options.arguments.front();
  auto package = dli.Show(name, options.group());
  if (!package) return Report(package.error());
  fs::path destination = options.output.empty() ? fs::path(name) : fs::path(options.output);
  if (options.output.ends_with('/')) fs::create_directories(destination, ec);  // "-o dir/"
  if (fs::is_directory(destination, ec)) destination /= name;
  if (destination.parent_path().empty()) destination = fs::path(".") / destination;
  return GetOne(dli, options, *package, destination);
}

}  // namespace dlipkg::client
