#include "core/package_service.hpp"

#include <algorithm>
#include <atomic>
#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace dlipkg {
namespace {

Error NotFound(const std::string& group, const std::string& name) {
  if (group.empty())
    return Error{ErrorCode::kNotFound, "The resource '" + name + "' does not exist."};
  return Error{ErrorCode::kNotFound,
               "The resource '" + name + "' does not exist in group '" + group + "'."};
}

}  // namespace

struct PackageService::Impl {
  ServicePorts ports;
  ServiceOptions options;

  Result<BlobInfo> FetchOne(const std::string& url) {
    auto writer = ports.blobs.Create();
    if (!writer) return std::unexpected(writer.error());
    if (auto fetched = ports.fetcher.Fetch(url, **writer); !fetched)
      return std::unexpected(fetched.error());
    return ports.keeper.CommitPinned(**writer);
  }

  // Fetches every source on the worker pool. All blobs stay pinned (the caller unpins); on
  // failure the error of the first failing path in request order is returned.
  Result<std::vector<BlobInfo>> FetchAll(const std::vector<std::string>& paths,
                                         std::vector<std::string>& pinned_out) {
    std::vector<Result<BlobInfo>> results(paths.size(), Fail(ErrorCode::kInternal, "not run"));
    ports.pool.RunAll(paths.size(), [&](std::size_t i) { results[i] = FetchOne(paths[i]); });
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
    return PackageRecord{.project = command.project,
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
                         .tags = command.tags};
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
      header = GroupRecord{.project = command.project,
                           .name = *group,
                           .owner = command.owner,
                           .create_time = now,
                           .update_time = now};
    auto queued = ports.jobs.EnqueueUploads(header, packages, command.paths,
                                            now + options.job_deadline_ms, options.max_queued_jobs);
    if (!queued) return std::unexpected(queued.error());
    if (options.on_enqueued) options.on_enqueued();
    return UploadResult{std::move(queued->group), std::move(queued->packages)};
  }

  Result<std::vector<std::string>> NamesOf(const std::vector<std::string>& paths) {
    std::vector<std::string> names;
    std::set<std::string> seen;
    for (const auto& path : paths) {
      auto name = ResourceNameFromUrl(path);
      if (!name) return std::unexpected(name.error());
      if (!seen.insert(*name).second)
        return Fail(ErrorCode::kBadRequest, "Duplicate resource name '" + *name +
                                                "' in paths: each package needs a "
                                                "distinct name.");
      names.push_back(*name);
    }
    return names;
  }

  // Shas of the packages that the upload will replace, to reclaim after the commit.
  std::vector<std::string> ShasToBeReplaced(const UploadCommand& command,
                                            const std::optional<std::string>& group,
                                            const std::vector<std::string>& names) {
    std::vector<std::string> shas;
    if (group && command.mode == GroupMode::kReplace) {
      if (auto old = ports.metadata.GetGroup(command.project, *group); old && *old)
        for (const auto& p : (*old)->packages) shas.push_back(p.sha256);
      return shas;
    }
    for (const auto& name : names)
      if (auto old = ports.metadata.GetPackage(command.project, group.value_or(""), name);
          old && *old)
        shas.push_back((*old)->sha256);
    return shas;
  }

  Result<UploadResult> Commit(const UploadCommand& command, const std::optional<std::string>& group,
                              std::vector<PackageRecord> packages) {
    UploadResult result;
    if (!group) {
      auto stored = ports.metadata.PutUngrouped(packages);
      if (!stored) return std::unexpected(stored.error());
      result.packages = std::move(*stored);
      return result;
    }
    const std::int64_t now = packages.empty() ? ports.clock.NowMs() : packages.front().update_time;
    GroupRecord header{.project = command.project,
                       .name = *group,
                       .owner = command.owner,
                       .create_time = now,
                       .update_time = now};
    auto stored = command.mode == GroupMode::kReplace
                      ? ports.metadata.ReplaceGroup(header, packages)
                      : ports.metadata.MergeIntoGroup(header, packages);
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
  if (auto project = ParseProjectId(command.project); !project)
    return std::unexpected(project.error());
  if (command.paths.empty()) return Fail(ErrorCode::kBadRequest, "paths must not be empty.");
  if (command.paths.size() > kMaxPathsPerRequest)
    return Fail(ErrorCode::kBadRequest, "paths has " + std::to_string(command.paths.size()) +
                                            " entries; at most 100 are allowed.");
  std::optional<std::string> group;
  if (command.group) {
    auto parsed = ParseGroupName(*command.group);
    if (!parsed) return std::unexpected(parsed.error());
    group = std::move(*parsed);
  }
  if (auto tags = ValidateTags(command.tags); !tags) return std::unexpected(tags.error());
  auto names = impl_->NamesOf(command.paths);
  if (!names) return std::unexpected(names.error());

  if (command.is_async) return impl_->Enqueue(command, group, *names);

  std::vector<std::string> pinned;
  auto blobs = impl_->FetchAll(command.paths, pinned);
  if (!blobs) {
    impl_->ports.keeper.Unpin(pinned);
    impl_->ports.keeper.Reclaim(pinned);
    return std::unexpected(blobs.error());
  }
  const auto replaced = impl_->ShasToBeReplaced(command, group, *names);
  const std::int64_t now = impl_->ports.clock.NowMs();
  std::vector<PackageRecord> packages;
  for (std::size_t i = 0; i < names->size(); ++i) {
    auto p = impl_->NewPackage(command, group, (*names)[i], now);
    p.sha256 = (*blobs)[i].sha256;
    p.size = (*blobs)[i].size;
    p.underlying_name = UnderlyingName(p.sha256, p.name);
    packages.push_back(std::move(p));
  }
  // Fetching may have taken long: the pins are renewed and the bytes checked once more.
  auto confirmed = impl_->ports.keeper.Confirm(pinned);
  auto result = confirmed ? impl_->Commit(command, group, std::move(packages))
                          : Result<UploadResult>(std::unexpected(confirmed.error()));
  impl_->ports.keeper.Unpin(pinned);
  impl_->ports.keeper.Reclaim(result ? replaced : pinned);
  return result;
}

Result<Listing> PackageService::List(const ListQuery& query) {
  if (!query.paged()) {
    Listing listing;
    ListingWalk walk(impl_->ports.metadata, query.project, query.filter());
    ListingWalk::Batch batch;
    for (;;) {
      auto more = walk.Next(batch);
      if (!more) return std::unexpected(more.error());
      if (!*more) return listing;
      listing.total += batch.ungrouped.size();
      std::move(batch.ungrouped.begin(), batch.ungrouped.end(),
                std::back_inserter(listing.ungrouped));
      for (auto& g : batch.groups) {
        listing.total += g.packages.size();
        listing.groups.push_back(std::move(g));
      }
    }
  }
  const PageRequest request{.project = query.project,
                            .filter = query.filter(),
                            .limit = std::min(query.limit.value_or(kMaxPageSize), kMaxPageSize),
                            .offset = query.offset,
                            .after = query.after};
  auto page = impl_->ports.metadata.ListPage(request);
  if (!page) return std::unexpected(page.error());
  Listing listing;
  listing.total = page->total;
  if (request.limit > 0 && page->packages.size() == request.limit)
    listing.next = ListPosition{page->packages.back().group, page->packages.back().name};
  // The page's packages are in listing order, so each group's are adjacent.
  auto group = page->groups.begin();
  for (auto& p : page->packages) {
    if (p.group.empty()) {
      listing.ungrouped.push_back(std::move(p));
      continue;
    }
    if (listing.groups.empty() || listing.groups.back().name != p.group) {
      while (group != page->groups.end() && group->name != p.group) ++group;
      listing.groups.push_back(group != page->groups.end()
                                   ? *group
                                   : GroupRecord{.project = p.project, .name = p.group});
    }
    listing.groups.back().packages.push_back(std::move(p));
  }
  return listing;
}

std::unique_ptr<ListingWalk> PackageService::WalkListing(const ListQuery& query) {
  return std::make_unique<ListingWalk>(impl_->ports.metadata, query.project, query.filter());
}

ListingWalk::ListingWalk(MetadataStore& store, std::string project, PackageFilter filter)
    : store_(store), project_(std::move(project)), filter_(std::move(filter)) {}

Result<bool> ListingWalk::Next(Batch& batch) {
  // Ungrouped packages per batch, and groups per batch (each with all its packages).
  constexpr std::size_t kUngroupedBatch = 500;
  constexpr std::size_t kGroupBatch = 100;
  batch.ungrouped.clear();
  batch.groups.clear();
  while (phase_ == Phase::kUngrouped) {
    auto read = store_.ListUngrouped(project_, filter_, after_, kUngroupedBatch);
    if (!read) return std::unexpected(read.error());
    if (read->size() < kUngroupedBatch) {
      phase_ = Phase::kGroups;
      after_.clear();
    } else {
      after_ = read->back().name;
    }
    if (!read->empty()) {
      batch.ungrouped = std::move(*read);
      return true;
    }
  }
  while (phase_ == Phase::kGroups) {
    auto read = store_.ListGroups(project_, filter_, after_, kGroupBatch);
    if (!read) return std::unexpected(read.error());
    if (read->next_after)
      after_ = std::move(*read->next_after);
    else
      phase_ = Phase::kDone;
    // A filtered batch may have no group left; the walk goes on to the next.
    if (!read->groups.empty()) {
      batch.groups = std::move(read->groups);
      return true;
    }
  }
  return false;
}

Result<PackageRecord> PackageService::Show(const std::string& project, const std::string& group,
                                           const std::string& name) {
  auto package = impl_->ports.metadata.GetPackage(project, group, name);
  if (!package) return std::unexpected(package.error());
  if (!*package) return std::unexpected(NotFound(group, name));
  return **package;
}

Result<void> PackageService::Delete(const std::string& project, const std::string& group,
                                    const std::string& name) {
  auto deleted = impl_->ports.metadata.DeletePackage(project, group, name);
  if (!deleted) {
    if (deleted.error().code == ErrorCode::kNotFound) return std::unexpected(NotFound(group, name));
    return std::unexpected(deleted.error());
  }
  impl_->ports.keeper.Reclaim({deleted->sha256});
  return {};
}

Result<void> PackageService::ChangeOwner(const std::string& project,
                                         const std::optional<std::string>& group,
                                         const std::optional<std::string>& name,
                                         const std::string& new_owner) {
  auto owner = ParseOwnerName(new_owner);
  if (!owner) return std::unexpected(owner.error());
  if (!group && !name)
    return Fail(ErrorCode::kBadRequest, "Give group_name, resource_name or both.");
  const std::int64_t now = impl_->ports.clock.NowMs();
  if (group && !name) {
    auto done = impl_->ports.metadata.SetGroupOwner(project, *group, *owner, now);
    if (!done && done.error().code == ErrorCode::kNotFound)
      return Fail(ErrorCode::kNotFound, "The group '" + *group + "' does not exist.");
    return done;
  }
  auto done =
      impl_->ports.metadata.SetPackageOwner(project, group.value_or(""), *name, *owner, now);
  if (!done && done.error().code == ErrorCode::kNotFound)
    return std::unexpected(NotFound(group.value_or(""), *name));
  return done;
}

Result<std::unique_ptr<BlobReader>> PackageService::OpenContent(const std::string& project,
                                                                const std::string& group,
                                                                const std::string& name) {
  auto package = Show(project, group, name);
  if (!package) return std::unexpected(package.error());
  if (package->sha256.empty())
    return Fail(ErrorCode::kNotFound, "The resource '" + name + "' has no stored content yet.");
  return impl_->ports.blobs.Open(package->sha256);
}

Result<void> PackageService::Sweep() {
  if (auto swept = impl_->ports.blobs.SweepTemporaries(); !swept) return swept;
  auto referenced = impl_->ports.metadata.ReferencedBlobs();
  if (!referenced) return std::unexpected(referenced.error());
  auto stored = impl_->ports.blobs.List();
  if (!stored) return std::unexpected(stored.error());
  const std::set<std::string> keep(referenced->begin(), referenced->end());
  std::vector<std::string> orphans;
  for (const auto& sha : *stored)
    if (!keep.contains(sha)) orphans.push_back(sha);
  impl_->ports.keeper.Reclaim(orphans);
  return {};
}

}  // namespace dlipkg
