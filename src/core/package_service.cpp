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

// Large enough to keep the disk busy, small enough that memory stays flat per upload; at least
// the blob writer's buffer, so that each chunk is written through without another copy.
constexpr std::size_t kStreamChunkBytes = 1 << 20;

// Reports the first kCorrupted read of a download to the metadata store: the package becomes
// FAILED with a reason, so show and list say what the download found.
class ReportingReader final : public BlobReader {
 public:
  ReportingReader(std::unique_ptr<BlobReader> inner, PackageRecord package, MetadataStore& metadata,
                  const Clock& clock)
      : inner_(std::move(inner)),
        package_(std::move(package)),
        metadata_(metadata),
        clock_(clock) {}
  std::int64_t Size() const override { return inner_->Size(); }
  Result<void> Seek(std::int64_t offset) override { return inner_->Seek(offset); }
  Result<std::size_t> Read(std::span<char> buffer) override { return Report(inner_->Read(buffer)); }
  std::optional<FileRegion> Region() override { return inner_->Region(); }
  Result<void> ConfirmUnchanged() override { return Report(inner_->ConfirmUnchanged()); }
  template <typename T>
  Result<T> Report(Result<T> outcome) {
    if (!outcome && outcome.error().code == ErrorCode::kCorrupted && !reported_) {
      reported_ = true;
      (void)metadata_.MarkCorrupt(package_.project, package_.group, package_.name, package_.sha256,
                                  CorruptReason(), clock_.NowMs());
    }
    return outcome;
  }
  static std::string CorruptReason() {
    return "The stored bytes no longer match the package's SHA-256 (found by a download); "
           "upload the package again.";
  }

 private:
  std::unique_ptr<BlobReader> inner_;
  const PackageRecord package_;
  MetadataStore& metadata_;
  const Clock& clock_;
  bool reported_ = false;
};

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

namespace {

// What every upload path commits: whose packages, of which kind, joining the group how.
// Built from a parsed UploadCommand, or by the direct-transfer paths.
struct Placement {
  std::string project;
  std::string owner;
  PackageKind kind = PackageKind::kFile;
  GroupMode mode = GroupMode::kReplace;
  bool is_async = false;
  std::vector<Tag> tags;
};

Placement PlacementOf(const UploadCommand& command) {
  return Placement{.project = command.project.str(),
                   .owner = command.owner,
                   .kind = command.kind,
                   .mode = command.mode,
                   .is_async = command.is_async,
                   .tags = command.tags.items()};
}

}  // namespace

struct PackageService::Impl {
  ServicePorts ports;
  ServiceOptions options;
  std::atomic<bool> cancelled{false};
  std::atomic<std::size_t> sync_uploads{0};

  Result<BlobInfo> FetchOne(const std::string& url, HeldBlob* held) {
    if (cancelled) return std::unexpected(ShuttingDown());
    auto writer = ports.blobs.Create();
    if (!writer) return std::unexpected(writer.error());
    UploadSink sink(**writer, cancelled);
    if (auto fetched = ports.fetcher.Fetch(url, sink); !fetched)
      return std::unexpected(fetched.error());
    if (cancelled) return std::unexpected(ShuttingDown());
    return ports.keeper.CommitPinned(**writer, held);
  }

  // Synchronous uploads (fetched, or streamed by the client) hold an HTTP handler thread each
  // for as long as their bytes take; past max_sync_uploads of them (counted with a SyncSlot
  // held by the caller) the new one is refused, so requests needing no bytes find a thread.
  std::optional<Error> TooManySync() const {
    if (sync_uploads <= options.max_sync_uploads) return std::nullopt;
    return Error{ErrorCode::kBusy, std::to_string(options.max_sync_uploads) +
                                       " synchronous uploads are running already; try again "
                                       "later, or upload asynchronously (is_async)."};
  }

  Error FetchersBusy() const {
    return Error{ErrorCode::kBusy, "Every source fetcher for synchronous uploads stayed busy for " +
                                       std::to_string(options.sync_start_wait.count() / 1000) +
                                       " s; try again later, or upload asynchronously (is_async)."};
  }

  // Fetches every source on the worker pool. All blobs stay held (the caller releases them);
  // on failure the error of the first failing path in request order is returned. A source
  // that finds no free fetcher within sync_start_wait fails with kBusy.
  Result<std::vector<BlobInfo>> FetchAll(const std::vector<std::string>& paths,
                                         std::vector<HeldBlob>& pinned_out) {
    std::vector<Result<BlobInfo>> results(paths.size(), Fail(ErrorCode::kInternal, "not run"));
    std::vector<HeldBlob> held(paths.size());
    const auto skipped = ports.pool.RunAllStartingWithin(
        paths.size(), [&](std::size_t i) { results[i] = FetchOne(paths[i], &held[i]); },
        ports.clock, ports.clock.MonotonicMs() + options.sync_start_wait.count());
    for (std::size_t i = 0; i < paths.size(); ++i)
      if (skipped[i]) results[i] = std::unexpected(cancelled ? ShuttingDown() : FetchersBusy());
    std::vector<BlobInfo> blobs_out;
    std::optional<Error> first_error;
    for (std::size_t i = 0; i < results.size(); ++i) {
      auto& result = results[i];
      if (result) {
        pinned_out.push_back(held[i]);
        blobs_out.push_back(*result);
      } else if (!first_error) {
        first_error = result.error();
      }
    }
    if (first_error) return std::unexpected(*first_error);
    return blobs_out;
  }

  PackageRecord NewPackage(const Placement& command, const std::optional<std::string>& group,
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

  Result<UploadResult> Enqueue(const Placement& command, const std::optional<std::string>& group,
                               const std::vector<std::string>& names,
                               const std::vector<std::string>& urls) {
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
    auto queued = ports.jobs.EnqueueUploads(header, packages, urls, now + options.job_deadline_ms,
                                            options.max_queued_jobs);
    if (!queued) return std::unexpected(queued.error());
    for (std::size_t i = 0; i < queued->packages.size(); ++i) {
      const auto& package = queued->packages[i];
      ports.events.Report({.kind = EventKind::kJobQueued,
                           .job_id = i < queued->job_ids.size() ? queued->job_ids[i] : 0,
                           .project = package.project,
                           .group = package.group,
                           .name = package.name});
    }
    if (options.on_enqueued) options.on_enqueued();
    return UploadResult{std::move(queued->group), std::move(queued->packages)};
  }

  // The common end of every synchronous upload: packages named `names` (kinds[i], or the
  // command's kind) with `blobs`, committed in one metadata transaction; the replaced bytes
  // are reclaimed after it (as read under the group's lock by the commit), the new ones if it
  // fails. Releases `pinned`: the commit itself releases their store pins (BlobCheck), so it is
  // the upload's only metadata write.
  Result<UploadResult> CommitBlobs(const Placement& command,
                                   const std::optional<std::string>& group,
                                   const std::vector<std::string>& names,
                                   const std::vector<PackageKind>& kinds,
                                   const std::vector<BlobInfo>& blobs,
                                   const std::vector<HeldBlob>& pinned) {
    std::vector<std::string> replaced;
    const std::int64_t now = ports.clock.NowMs();
    std::vector<PackageRecord> packages;
    for (std::size_t i = 0; i < names.size(); ++i) {
      auto p = NewPackage(command, group, names[i], now);
      if (i < kinds.size()) p.kind = kinds[i];
      p.sha256 = blobs[i].sha256;
      p.size = blobs[i].size;
      p.underlying_name = UnderlyingName(p.sha256, p.name);
      packages.push_back(std::move(p));
    }
    const BlobCheck check = ports.keeper.CheckFor(pinned);
    auto result = Commit(command, group, std::move(packages), replaced, check);
    if (!result) {
      ports.keeper.Unpin(pinned);
      ports.keeper.Reclaim(Hashes(pinned));
      return result;
    }
    ports.keeper.Committed(pinned);
    ports.keeper.Reclaim(replaced);
    ReclaimReplacedMeanwhile(Hashes(pinned));
    return result;
  }

  static std::vector<std::string> Hashes(const std::vector<HeldBlob>& held) {
    std::vector<std::string> shas;
    for (const auto& h : held) shas.push_back(h.sha256);
    return shas;
  }

  // A racing replacement of the same packages may have committed between this commit and its
  // release: its reclaim then found these bytes held and kept them (queued), and nobody else
  // would reclaim them before the collector's next round. So the bytes this upload committed
  // are reclaimed once more if no package refers to them any more.
  void ReclaimReplacedMeanwhile(const std::vector<std::string>& pinned) {
    std::vector<std::string> dropped;
    for (const auto& sha : pinned)
      if (auto referenced = ports.metadata.IsBlobReferenced(sha); referenced && !*referenced)
        dropped.push_back(sha);
    if (!dropped.empty()) ports.keeper.Reclaim(dropped);
  }

  // Streams `body` into a new blob, committed and held (`held`). kBodyTooLarge past `max_bytes`;
  // kBusy past max_sync_uploads, or when the server shuts down (checked between chunks; each
  // read of the body is bounded by the HTTP layer's read timeout).
  Result<BlobInfo> StreamIntoBlob(ByteSource& body, std::int64_t max_bytes, HeldBlob& held) {
    if (cancelled) return std::unexpected(ShuttingDown());
    SyncSlot slot(sync_uploads);
    if (auto busy = TooManySync()) return std::unexpected(*busy);
    auto writer = ports.blobs.Create();
    if (!writer) return std::unexpected(writer.error());
    std::vector<char> chunk(kStreamChunkBytes);
    std::int64_t total = 0;
    for (;;) {
      if (cancelled) return std::unexpected(ShuttingDown());
      auto bytes = body.Lend(chunk);  // the body's own buffer where it has one: no copy
      if (!bytes) return std::unexpected(bytes.error());
      if (bytes->empty()) break;
      total += static_cast<std::int64_t>(bytes->size());
      if (total > max_bytes)
        return Fail(ErrorCode::kBodyTooLarge, "The object is larger than the server's limit of " +
                                                  std::to_string(max_bytes) + " bytes.");
      if (auto written = (*writer)->Write(*bytes); !written)
        return std::unexpected(written.error());
    }
    return ports.keeper.CommitPinned(**writer, &held);
  }

  // The hashes a client declared for the bytes it sent; on a mismatch the new blob is dropped.
  Result<void> CheckDeclared(const BlobInfo& blob, const HeldBlob& held,
                             const std::optional<Sha256Hex>& expected,
                             const std::optional<Sha256Hex>& signed_sha) {
    std::optional<Error> error;
    if (expected && expected->str() != blob.sha256)
      error = Error{ErrorCode::kBadRequest, "The body's SHA-256 " + blob.sha256 +
                                                " differs from X-Content-Sha256 " +
                                                expected->str() + "; nothing was stored."};
    else if (signed_sha && signed_sha->str() != blob.sha256)
      error = Error{ErrorCode::kUnauthenticated,
                    "The body's SHA-256 differs from the payload hash the request was signed "
                    "with; nothing was stored."};
    if (!error) return {};
    ports.keeper.Unpin({held});
    ports.keeper.Reclaim({blob.sha256});
    return std::unexpected(*error);
  }

  // `replaced` receives the hashes the commit replaced, read under the group's lock, so racing
  // replacements each reclaim exactly what they replaced.
  Result<UploadResult> Commit(const Placement& command, const std::optional<std::string>& group,
                              std::vector<PackageRecord> packages,
                              std::vector<std::string>& replaced, const BlobCheck& check) {
    UploadResult result;
    if (!group) {
      auto stored = ports.metadata.PutUngrouped(packages, &replaced, &check);
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
                      ? ports.metadata.ReplaceGroup(header, packages, &replaced, &check)
                      : ports.metadata.MergeIntoGroup(header, packages, &replaced, &check);
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
  const Placement placement = PlacementOf(command);
  if (command.is_async) return impl_->Enqueue(placement, group, names, command.sources.Urls());

  if (impl_->cancelled) return std::unexpected(ShuttingDown());
  SyncSlot slot(impl_->sync_uploads);
  if (auto busy = impl_->TooManySync()) return std::unexpected(*busy);
  std::vector<HeldBlob> pinned;
  auto blobs = impl_->FetchAll(command.sources.Urls(), pinned);
  if (!blobs) {
    impl_->ports.keeper.Unpin(pinned);
    impl_->ports.keeper.Reclaim(Impl::Hashes(pinned));
    return std::unexpected(blobs.error());
  }
  return impl_->CommitBlobs(placement, group, names, {}, *blobs, pinned);
}

Result<PackageRecord> PackageService::UploadBytes(const DirectUpload& upload, ByteSource& body) {
  // The names were validated when the request was parsed (domain/values.hpp).
  const Placement command{.project = upload.project.str(),
                          .owner = upload.owner,
                          .kind = upload.kind,
                          .mode = GroupMode::kMerge};
  const std::optional<std::string> group =
      upload.group ? std::optional(upload.group->str()) : std::nullopt;
  HeldBlob held;
  auto blob = impl_->StreamIntoBlob(body, upload.max_bytes, held);
  if (!blob) return std::unexpected(blob.error());
  if (auto ok = impl_->CheckDeclared(*blob, held, upload.expected_sha256, upload.signed_sha256);
      !ok)
    return std::unexpected(ok.error());
  auto result = impl_->CommitBlobs(command, group, {upload.name.str()}, {}, {*blob}, {held});
  if (!result) return std::unexpected(result.error());
  return std::move(result->packages.front());
}

Result<BlobInfo> PackageService::StageBlob(const Sha256Hex& sha256, std::int64_t max_bytes,
                                           const std::optional<Sha256Hex>& signed_sha256,
                                           ByteSource& body) {
  HeldBlob held;
  auto blob = impl_->StreamIntoBlob(body, max_bytes, held);
  if (!blob) return std::unexpected(blob.error());
  if (auto ok = impl_->CheckDeclared(*blob, held, sha256, signed_sha256); !ok)
    return std::unexpected(ok.error());
  auto& keeper = impl_->ports.keeper;
  auto staged = keeper.PinStaged(blob->sha256,
                                 impl_->ports.clock.NowMs() + impl_->options.staged_blob_ttl_ms);
  keeper.Unpin({held});
  if (!staged) return std::unexpected(staged.error());
  return *blob;
}

Result<bool> PackageService::HasBlob(const Sha256Hex& sha256) {
  auto exists = impl_->ports.blobs.Exists(sha256.str());
  if (!exists || !*exists) return exists;
  auto staged = impl_->ports.keeper.PinStaged(
      sha256.str(), impl_->ports.clock.NowMs() + impl_->options.staged_blob_ttl_ms);
  if (!staged && staged.error().code == ErrorCode::kNotFound) return false;
  if (!staged) return std::unexpected(staged.error());
  return true;
}

Result<GroupRecord> PackageService::CommitStaged(const ProjectId& project, const std::string& owner,
                                                 const GroupName& group,
                                                 const std::vector<StagedPackage>& packages) {
  if (packages.empty() || packages.size() > kMaxPathsPerRequest)
    return Fail(ErrorCode::kBadRequest, "packages must hold 1 to 100 entries.");
  std::vector<std::string> names;
  std::vector<PackageKind> kinds;
  std::vector<std::string> shas;
  std::set<std::string> seen;
  for (const auto& p : packages) {
    if (!seen.insert(p.name.str()).second)
      return Fail(ErrorCode::kBadRequest,
                  "Duplicate resource name '" + p.name.str() + "' in packages.");
    names.push_back(p.name.str());
    kinds.push_back(p.kind);
    shas.push_back(p.sha256.str());
  }
  auto held = impl_->ports.keeper.Hold(shas);
  if (!held) return std::unexpected(held.error());
  std::vector<BlobInfo> blobs;
  for (const auto& sha : shas) {
    auto reader = impl_->ports.blobs.Open(sha);
    if (!reader) {
      impl_->ports.keeper.Unpin(*held);
      return std::unexpected(reader.error());
    }
    blobs.push_back(BlobInfo{sha, (*reader)->Size()});
  }
  const Placement command{
      .project = project.str(), .owner = owner, .kind = kinds.front(), .mode = GroupMode::kReplace};
  auto result = impl_->CommitBlobs(command, group.str(), names, kinds, blobs, *held);
  if (!result) return std::unexpected(result.error());
  return std::move(*result->group);
}

namespace {

// An unpaged listing, read from the store 100 groups at a time.
Result<Listing> WholeListing(MetadataStore& metadata, const ListQuery& query) {
  Listing listing;
  ListingWalk walk(metadata, query.project.str(), query.filter());
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

// The page's packages under their groups; they come in listing order, so each group's are
// adjacent.
void Regroup(std::vector<PackageRecord>& packages, const std::vector<GroupRecord>& groups,
             Listing& listing) {
  auto group = groups.begin();
  for (auto& p : packages) {
    if (p.group.empty()) {
      listing.ungrouped.push_back(std::move(p));
      continue;
    }
    if (listing.groups.empty() || listing.groups.back().name != p.group) {
      while (group != groups.end() && group->name != p.group) ++group;
      listing.groups.push_back(
          group != groups.end() ? *group : GroupRecord{.project = p.project, .name = p.group});
    }
    listing.groups.back().packages.push_back(std::move(p));
  }
}

}  // namespace

Result<Listing> PackageService::List(const ListQuery& query) {
  if (!query.paged()) return WholeListing(impl_->ports.metadata, query);
  const PageRequest request{.project = query.project.str(),
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
  Regroup(page->packages, page->groups, listing);
  return listing;
}

std::unique_ptr<ListingWalk> PackageService::WalkListing(const ListQuery& query) {
  return std::make_unique<ListingWalk>(impl_->ports.metadata, query.project.str(), query.filter());
}

ListingWalk::ListingWalk(MetadataStore& store, std::string project, PackageFilter filter)
    : store_(store), project_(std::move(project)), filter_(std::move(filter)) {}

Result<bool> ListingWalk::Next(Batch& batch) {
  // Ungrouped packages per batch, and groups per batch (each with all its packages). On
  // PostgreSQL a batch has a fixed cost (its ranges are scanned and hashed once), which 250
  // groups amortise as well as 1,000 did (bench/list_scale.py), at half the RSS growth
  // (16 MiB against 29 MiB while a listing of 100,000 groups is answered).
  constexpr std::size_t kUngroupedBatch = 500;
  constexpr std::size_t kGroupBatch = 250;
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
    // The store may read the next batch while this one is encoded and sent.
    if (!groups_) groups_ = store_.WalkGroups(project_, filter_, kGroupBatch);
    auto read = groups_->Next();
    if (!read) return std::unexpected(read.error());
    if (!read->next_after) {
      phase_ = Phase::kDone;
      groups_.reset();  // what the walk holds (a connection) is not kept while the end is sent
    }
    // A filtered batch may have no group left; the walk goes on to the next.
    if (!read->groups.empty()) {
      batch.groups = std::move(read->groups);
      return true;
    }
  }
  return false;
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

Result<std::unique_ptr<BlobReader>> PackageService::OpenChecked(const PackageRecord& package) {
  if (package.sha256.empty())
    return Fail(ErrorCode::kNotFound,
                "The resource '" + package.name + "' has no stored content yet.");
  auto reader = impl_->ports.blobs.Open(package.sha256);
  if (!reader) return std::unexpected(reader.error());
  auto checked = std::make_unique<ReportingReader>(std::move(*reader), package,
                                                   impl_->ports.metadata, impl_->ports.clock);
  if (checked->Size() != package.size) {
    (void)impl_->ports.metadata.MarkCorrupt(package.project, package.group, package.name,
                                            package.sha256, ReportingReader::CorruptReason(),
                                            impl_->ports.clock.NowMs());
    return Fail(ErrorCode::kCorrupted, "The stored bytes of '" + package.name +
                                           "' do not have the package's size; it was marked "
                                           "FAILED.");
  }
  return std::unique_ptr<BlobReader>(std::move(checked));
}

void PackageService::CancelFetches() { impl_->cancelled = true; }

Result<std::vector<std::string>> PackageService::Sweep(bool empty_store_expected) {
  // Before serving, with the data directory locked: no writer of this store is alive.
  if (auto swept = impl_->ports.blobs.SweepTemporaries(std::chrono::milliseconds(0)); !swept)
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
  // Only blobs this store has seen unreferenced for the grace period go (bug 5): the others
  // are recorded now, and the periodic collector takes them once the grace has passed.
  return impl_->ports.keeper.CollectAbandoned(impl_->options.collect_grace);
}

}  // namespace dlipkg
