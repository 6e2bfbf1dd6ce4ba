#include "core/package_service.hpp"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace dlipkg {
namespace {

bool MatchesTags(const PackageRecord& package, const std::vector<ListQuery::TagFilter>& filters) {
  return std::all_of(filters.begin(), filters.end(), [&](const ListQuery::TagFilter& filter) {
    return std::any_of(package.tags.begin(), package.tags.end(), [&](const Tag& tag) {
      return tag.key == filter.key && (!filter.value || tag.value == *filter.value);
    });
  });
}

bool Matches(const PackageRecord& package, const ListQuery& query) {
  return (!query.kind || package.kind == *query.kind) && MatchesTags(package, query.tags);
}

Error NotFound(const std::string& group, const std::string& name) {
  if (group.empty())
    return Error{ErrorCode::kNotFound, "The resource '" + name + "' does not exist."};
  return Error{ErrorCode::kNotFound,
               "The resource '" + name + "' does not exist in group '" + group + "'."};
}

Error ShuttingDown() {
  return Error{ErrorCode::kBusy, "The server is shutting down; try the upload again."};
}

// A synchronous upload's sink: the blob writer, cancelled when the server shuts down.
class UploadSink final : public ByteSink {
 public:
  UploadSink(BlobWriter& writer, const std::atomic<bool>& cancelled)
      : writer_(writer), cancelled_(cancelled) {}
  Result<void> Write(std::span<const char> bytes) override {
    if (cancelled_) return std::unexpected(ShuttingDown());
    return writer_.Write(bytes);
  }
  std::optional<Error> Cancelled() const override {
    if (cancelled_) return ShuttingDown();
    return std::nullopt;
  }

 private:
  BlobWriter& writer_;
  const std::atomic<bool>& cancelled_;
};

// Counts a synchronous upload in for as long as it lives.
class SyncSlot {
 public:
  explicit SyncSlot(std::atomic<std::size_t>& running) : running_(running) { ++running_; }
  ~SyncSlot() { --running_; }
  SyncSlot(const SyncSlot&) = delete;
  SyncSlot& operator=(const SyncSlot&) = delete;

 private:
  std::atomic<std::size_t>& running_;
};

}  // namespace

struct PackageService::Impl {
  ServicePorts ports;
  ServiceOptions options;
  std::atomic<bool> cancelled{false};
  std::atomic<std::size_t> sync_uploads{0};

  Result<BlobInfo> FetchOne(const std::string& url) {
    if (cancelled) return std::unexpected(ShuttingDown());
    auto writer = ports.blobs.Create();
    if (!writer) return std::unexpected(writer.error());
    UploadSink sink(**writer, cancelled);
    if (auto fetched = ports.fetcher.Fetch(url, sink); !fetched)
      return std::unexpected(fetched.error());
    if (cancelled) return std::unexpected(ShuttingDown());
    return ports.keeper.CommitPinned(**writer);
  }

  Error FetchersBusy() const {
    return Error{ErrorCode::kBusy, "Every source fetcher for synchronous uploads stayed busy for " +
                                       std::to_string(options.sync_start_wait.count() / 1000) +
                                       " s; try again later, or upload asynchronously (is_async)."};
  }

  // Fetches every source on the worker pool. All blobs stay pinned (the caller unpins); on
  // failure the error of the first failing path in request order is returned. A source that
  // finds no free fetcher within sync_start_wait fails with kBusy.
  Result<std::vector<BlobInfo>> FetchAll(const std::vector<std::string>& paths,
                                         std::vector<std::string>& pinned_out) {
    std::vector<Result<BlobInfo>> results(paths.size(), Fail(ErrorCode::kInternal, "not run"));
    const auto skipped = ports.pool.RunAllStartingWithin(
        paths.size(), [&](std::size_t i) { results[i] = FetchOne(paths[i]); },
        options.sync_start_wait);
    for (std::size_t i = 0; i < paths.size(); ++i)
      if (skipped[i]) results[i] = std::unexpected(cancelled ? ShuttingDown() : FetchersBusy());
    std::vector<BlobInfo> blobs_out;
    std::optional<Error> first_error;
    for (auto& result : results) {
      if (result) {
        pinned_out.push_back(result->sha256);
        blobs_out.push_back(*result);
      } else if (!first_error) {
        first_error = result.error();
      }
    }
    if (first_error) return std::unexpected(*first_error);
    return blobs_out;
  }

  PackageRecord NewPackage(const UploadCommand& command, const std::optional<std::string>& group,
                           const std::string& name, std::int64_t now) const {
    return PackageRecord{.project = command.project.str(),
                         .group = group.value_or(""),
                         .name = name,
                         .kind = command.kind,
                         .status = PackageStatus::kReady,
                         .sha256 = "",
                         .size = 0,
                         .underlying_name = "",
                         .owner = command.owner,
                         .create_time = now,
                         .update_time = now,
                         .is_async = command.is_async,
                         .status_reason = "",
                         .tags = command.tags.items()};
  }

  Result<UploadResult> Enqueue(const UploadCommand& command,
                               const std::optional<std::string>& group,
                               const std::vector<std::string>& names) {
    if (command.mode == GroupMode::kReplace && group)
      return Fail(ErrorCode::kNotSupported,
                  "Asynchronous uploads merge into a group; replacing a whole group is "
                  "synchronous.");
    const std::int64_t now = ports.clock.NowMs();
    std::vector<PackageRecord> packages;
    for (const auto& name : names) packages.push_back(NewPackage(command, group, name, now));
    std::optional<GroupRecord> header;
    if (group)
      header = GroupRecord{.project = command.project.str(),
                           .name = *group,
                           .owner = command.owner,
                           .create_time = now,
                           .update_time = now};
    auto queued = ports.jobs.EnqueueUploads(header, packages, command.sources.Urls(),
                                            now + options.job_deadline_ms, options.max_queued_jobs);
    if (!queued) return std::unexpected(queued.error());
    if (options.on_enqueued) options.on_enqueued();
    return UploadResult{std::move(queued->group), std::move(queued->packages)};
  }

  // `replaced` receives the hashes the commit replaced, read under the group's lock, so racing
  // replacements each reclaim exactly what they replaced (issue 15).
  Result<UploadResult> Commit(const UploadCommand& command, const std::optional<std::string>& group,
                              std::vector<PackageRecord> packages,
                              std::vector<std::string>& replaced) {
    UploadResult result;
    if (!group) {
      auto stored = ports.metadata.PutUngrouped(packages, &replaced);
      if (!stored) return std::unexpected(stored.error());
      result.packages = std::move(*stored);
      return result;
    }
    const std::int64_t now = packages.empty() ? ports.clock.NowMs() : packages.front().update_time;
    GroupRecord header{.project = command.project.str(),
                       .name = *group,
                       .owner = command.owner,
                       .create_time = now,
                       .update_time = now};
    auto stored = command.mode == GroupMode::kReplace
                      ? ports.metadata.ReplaceGroup(header, packages, &replaced)
                      : ports.metadata.MergeIntoGroup(header, packages, &replaced);
    if (!stored) return std::unexpected(stored.error());
    for (const auto& p : stored->packages)
      if (std::any_of(packages.begin(), packages.end(),
                      [&](const PackageRecord& mine) { return mine.name == p.name; }))
        result.packages.push_back(p);
    result.group = std::move(*stored);
    return result;
  }
};

PackageService::PackageService(ServicePorts ports, ServiceOptions options)
    : impl_(new Impl{ports, std::move(options)}) {}

PackageService::~PackageService() = default;

Result<UploadResult> PackageService::Upload(const UploadCommand& command) {
  // Everything in the command was validated when it was parsed (domain/values.hpp).
  const std::optional<std::string> group =
      command.group ? std::optional(command.group->str()) : std::nullopt;
  const std::vector<std::string> names = command.sources.Names();
  if (command.is_async) return impl_->Enqueue(command, group, names);

  if (impl_->cancelled) return std::unexpected(ShuttingDown());
  SyncSlot slot(impl_->sync_uploads);
  if (impl_->sync_uploads > impl_->options.max_sync_uploads)
    return Fail(ErrorCode::kBusy, std::to_string(impl_->options.max_sync_uploads) +
                                      " synchronous uploads are running already; try again "
                                      "later, or upload asynchronously (is_async).");
  std::vector<std::string> pinned;
  auto blobs = impl_->FetchAll(command.sources.Urls(), pinned);
  if (!blobs) {
    impl_->ports.keeper.Unpin(pinned);
    impl_->ports.keeper.Reclaim(pinned);
    return std::unexpected(blobs.error());
  }
  std::vector<std::string> replaced;
  const std::int64_t now = impl_->ports.clock.NowMs();
  std::vector<PackageRecord> packages;
  for (std::size_t i = 0; i < names.size(); ++i) {
    auto p = impl_->NewPackage(command, group, names[i], now);
    p.sha256 = (*blobs)[i].sha256;
    p.size = (*blobs)[i].size;
    p.underlying_name = UnderlyingName(p.sha256, p.name);
    packages.push_back(std::move(p));
  }
  // Fetching may have taken long: the pins are renewed and the bytes checked once more.
  auto confirmed = impl_->ports.keeper.Confirm(pinned);
  auto result = confirmed ? impl_->Commit(command, group, std::move(packages), replaced)
                          : Result<UploadResult>(std::unexpected(confirmed.error()));
  impl_->ports.keeper.Unpin(pinned);
  impl_->ports.keeper.Reclaim(result ? replaced : pinned);
  return result;
}

Result<Listing> PackageService::List(const ListQuery& query) {
  auto contents = impl_->ports.metadata.ListProject(query.project.str());
  if (!contents) return std::unexpected(contents.error());
  const bool filtered = query.kind || !query.tags.empty();
  const bool paged = query.limit.has_value() || query.offset > 0;

  // Each listed package as (group name, package name), the paging order; ungrouped first.
  struct Entry {
    const GroupRecord* group;
    const PackageRecord* package;
  };
  std::vector<Entry> entries;
  for (const auto& p : contents->ungrouped)
    if (Matches(p, query)) entries.push_back({nullptr, &p});
  for (const auto& g : contents->groups)
    for (const auto& p : g.packages)
      if (Matches(p, query)) entries.push_back({&g, &p});

  Listing listing;
  listing.total = entries.size();
  if (paged) {
    std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
      const auto group_of = [](const Entry& e) {
        return e.group ? std::string_view(e.group->name) : std::string_view();
      };
      return std::pair(group_of(a), std::string_view(a.package->name)) <
             std::pair(group_of(b), std::string_view(b.package->name));
    });
    const std::size_t begin = std::min(query.offset, entries.size());
    const std::size_t end = std::min(entries.size(), begin + query.limit.value_or(entries.size()));
    entries = std::vector<Entry>(entries.begin() + begin, entries.begin() + end);
  }

  // Rebuild groups from the kept entries, keeping group order; empty groups are shown only in
  // an unfiltered, unpaged listing (they have no package to match a filter or fill a page).
  std::map<const GroupRecord*, std::size_t> index;
  for (const auto& g : contents->groups) {
    if (!filtered && !paged && g.packages.empty()) {
      listing.groups.push_back(g);
    }
  }
  for (const auto& e : entries) {
    if (!e.group) {
      listing.ungrouped.push_back(*e.package);
      continue;
    }
    auto [it, inserted] = index.try_emplace(e.group, 0);
    if (inserted) {
      GroupRecord copy = *e.group;
      copy.packages.clear();
      listing.groups.push_back(std::move(copy));
      it->second = listing.groups.size() - 1;
    }
    listing.groups[it->second].packages.push_back(*e.package);
  }
  if (!paged)
    std::stable_sort(listing.groups.begin(), listing.groups.end(),
                     [](const GroupRecord& a, const GroupRecord& b) { return a.name < b.name; });
  return listing;
}

Result<PackageRecord> PackageService::Show(const PackageId& id) {
  const std::string group = id.group ? id.group->str() : "";
  auto package = impl_->ports.metadata.GetPackage(id.project.str(), group, id.name.str());
  if (!package) return std::unexpected(package.error());
  if (!*package) return std::unexpected(NotFound(group, id.name.str()));
  return **package;
}

Result<void> PackageService::Delete(const PackageId& id) {
  const std::string group = id.group ? id.group->str() : "";
  auto deleted = impl_->ports.metadata.DeletePackage(id.project.str(), group, id.name.str());
  if (!deleted) {
    if (deleted.error().code == ErrorCode::kNotFound)
      return std::unexpected(NotFound(group, id.name.str()));
    return std::unexpected(deleted.error());
  }
  impl_->ports.keeper.Reclaim({deleted->sha256});
  return {};
}

Result<void> PackageService::ChangeOwner(const ProjectId& project, const OwnerTarget& target,
                                         const OwnerName& new_owner) {
  if (!target.group && !target.name)
    return Fail(ErrorCode::kBadRequest, "Give group_name, resource_name or both.");
  const std::int64_t now = impl_->ports.clock.NowMs();
  const std::string group = target.group ? target.group->str() : "";
  if (!target.name) {
    auto done = impl_->ports.metadata.SetGroupOwner(project.str(), group, new_owner.str(), now);
    if (!done && done.error().code == ErrorCode::kNotFound)
      return Fail(ErrorCode::kNotFound, "The group '" + group + "' does not exist.");
    return done;
  }
  const std::string& name = target.name->str();
  auto done =
      impl_->ports.metadata.SetPackageOwner(project.str(), group, name, new_owner.str(), now);
  if (!done && done.error().code == ErrorCode::kNotFound)
    return std::unexpected(NotFound(group, name));
  return done;
}

Result<std::unique_ptr<BlobReader>> PackageService::OpenContent(const PackageId& id) {
  auto package = Show(id);
  if (!package) return std::unexpected(package.error());
  if (package->sha256.empty())
    return Fail(ErrorCode::kNotFound,
                "The resource '" + id.name.str() + "' has no stored content yet.");
  return impl_->ports.blobs.Open(package->sha256);
}

void PackageService::CancelFetches() { impl_->cancelled = true; }

Result<std::vector<std::string>> PackageService::Sweep(bool empty_store_expected) {
  if (auto swept = impl_->ports.blobs.SweepTemporaries(); !swept)
    return std::unexpected(swept.error());
  auto referenced = impl_->ports.metadata.ReferencedBlobs();
  if (!referenced) return std::unexpected(referenced.error());
  auto stored = impl_->ports.blobs.List();
  if (!stored) return std::unexpected(stored.error());
  // A store with queued jobs is not new: its first uploads may have crashed after storing bytes.
  auto queued = impl_->ports.jobs.CountQueued();
  if (!queued) return std::unexpected(queued.error());
  if (referenced->empty() && *queued == 0 && !stored->empty()) {
    if (empty_store_expected) return std::vector<std::string>{};
    return Fail(ErrorCode::kNotSupported,
                "the metadata store refers to no package, yet the blob store holds " +
                    std::to_string(stored->size()) +
                    " blob(s): is it the right database (deleted, truncated, mistyped)? Nothing "
                    "was removed. Start with --allow-empty-metadata to keep the blobs and serve "
                    "from this database anyway.");
  }
  const std::set<std::string> keep(referenced->begin(), referenced->end());
  std::vector<std::string> orphans;
  for (const auto& sha : *stored)
    if (!keep.contains(sha)) orphans.push_back(sha);
  impl_->ports.keeper.Reclaim(orphans);
  return orphans;
}

}  // namespace dlipkg
