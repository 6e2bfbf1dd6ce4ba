// The use cases of the resources API: upload (replace or merge a group, or ungrouped), list,
// show, delete, change owner. Pure logic over the ports; no HTTP, JSON, SQL or curl here.
// Blocking (it calls the stores and the fetcher); thread-safe: many requests may run at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/blob_keeper.hpp"
#include "core/worker_pool.hpp"
#include "domain/error.hpp"
#include "domain/records.hpp"
#include "domain/values.hpp"
#include "ports/blob_store.hpp"
#include "ports/byte_source.hpp"
#include "ports/clock.hpp"
#include "ports/event_sink.hpp"
#include "ports/job_queue.hpp"
#include "ports/metadata_store.hpp"
#include "ports/source_fetcher.hpp"

namespace dlipkg {

enum class GroupMode {
  kReplace,  // the group holds exactly the new packages afterwards (typed uploads, 3.1)
  kMerge,    // same-named packages replaced, others kept (3.2 with a group)
};

// An upload, parsed and validated by the caller (the API) into domain values.
struct UploadCommand {
  ProjectId project;
  std::string owner;  // the authenticated user (or the configured default owner)
  PackageKind kind = PackageKind::kFile;
  std::optional<GroupName> group;  // nullopt: ungrouped
  GroupMode mode = GroupMode::kReplace;
  SourceList sources;  // 1-100 source URLs with distinct package names
  TagList tags;
  bool is_async = false;  // queue the fetches and answer at once (merge mode or ungrouped)
};

// One package: ungrouped when `group` is nullopt.
struct PackageId {
  ProjectId project;
  std::optional<GroupName> group;
  ResourceName name;
};

// What an owner change applies to: a group (and its packages) alone, an ungrouped package
// alone, or a package in a group; at least one of the two.
struct OwnerTarget {
  std::optional<GroupName> group;
  std::optional<ResourceName> name;
};

// A package's bytes streamed by the client itself (PUT .../resources/{name}/content): merged into
// the group (created if absent) or ungrouped, replacing a same-named package atomically.
struct DirectUpload {
  ProjectId project;
  std::string owner;  // the caller, as authenticated
  PackageKind kind = PackageKind::kFile;
  std::optional<GroupName> group;  // nullopt: ungrouped
  ResourceName name;
  std::int64_t max_bytes = 0;  // more bytes than this: kBodyTooLarge, nothing stored
  // The client's X-Content-Sha256: other bytes are kBadRequest, nothing stored.
  std::optional<Sha256Hex> expected_sha256;
  // The payload hash an AK/SK signature covered: other bytes are kUnauthenticated.
  std::optional<Sha256Hex> signed_sha256;
};

// One package of a whole-group commit of staged blobs.
struct StagedPackage {
  ResourceName name;
  PackageKind kind = PackageKind::kFile;
  Sha256Hex sha256;
};

struct UploadResult {
  std::optional<GroupRecord> group;     // grouped uploads: the whole group afterwards
  std::vector<PackageRecord> packages;  // the packages this request uploaded, request order
};

// Packages on one page at most; also the page size when only an offset or a cursor is given.
inline constexpr std::size_t kMaxPageSize = 1000;

struct ListQuery {
  ProjectId project;
  std::optional<PackageKind> kind;
  // All must match; a tag with has_value=false matches any value of the key.
  using TagFilter = dlipkg::TagFilter;
  std::vector<TagFilter> tags;
  // "" for none; else only packages whose name or group name contains it (case-sensitive, as
  // names are compared everywhere else), for the console's search (extension).
  std::string name_contains;
  std::optional<std::size_t> limit;  // packages per page (extension)
  std::size_t offset = 0;
  std::optional<ListPosition> after;  // keyset cursor (extension): packages after this one

  bool paged() const { return limit.has_value() || offset > 0 || after.has_value(); }
  PackageFilter filter() const { return PackageFilter{kind, tags, name_contains}; }
};

struct Listing {
  std::vector<PackageRecord> ungrouped;
  std::vector<GroupRecord> groups;  // only groups with a matching package when filtered
  std::size_t total = 0;            // packages listed (after filters, before paging)
  // Paged: where the next page starts, when this one was full (the next may be empty).
  std::optional<ListPosition> next;
};

// The unpaginated listing read in batches (the ungrouped packages by name, then the groups by
// name, each with its packages in upload order), so that an answer of any size is written with
// bounded memory: one batch, bounded by its size and the largest group. Each batch is one
// snapshot, so a group is never seen half replaced; different batches may see different
// states. Blocking (it reads the store). Not thread-safe: one walk per answer.
class ListingWalk {
 public:
  struct Batch {
    std::vector<PackageRecord> ungrouped;
    std::vector<GroupRecord> groups;
  };
  ListingWalk(MetadataStore& store, std::string project, PackageFilter filter);
  // Replaces `batch` with the next one (never empty); false when the walk is over.
  Result<bool> Next(Batch& batch);

 private:
  enum class Phase { kUngrouped, kGroups, kDone };
  MetadataStore& store_;
  const std::string project_;
  const PackageFilter filter_;
  Phase phase_ = Phase::kUngrouped;
  std::string after_;                  // the last ungrouped name read
  std::unique_ptr<GroupWalk> groups_;  // from the first batch of groups on
};

struct ServiceOptions {
  std::int64_t staged_blob_ttl_ms = 3'600'000;  // a staged blob waits this long for its commit
  std::size_t max_queued_jobs = 100'000;        // asynchronous uploads of one project waiting
  // Synchronous uploads (fetched, or streamed in by the client) running at once; beyond it
  // kBusy at once. Kept below the number of HTTP handler threads so that requests needing no
  // bytes moved always find a thread.
  std::size_t max_sync_uploads = 16;
  // How long a synchronous upload's source may wait for a free fetcher before kBusy.
  std::chrono::milliseconds sync_start_wait{30'000};
  std::int64_t job_deadline_ms = 3'600'000;  // an async upload fails after this long
  // The start-up sweep removes an unreferenced blob only once it has been seen unreferenced
  // this long (recorded in the metadata store; see Collector).
  std::chrono::milliseconds collect_grace{86'400'000};
  std::function<void()> on_enqueued;  // wakes the job runner
};

// What the service works with. The job queue and the metadata store are usually one object.
struct ServicePorts {
  MetadataStore& metadata;
  JobQueue& jobs;
  BlobStore& blobs;
  SourceFetcher& fetcher;
  const Clock& clock;
  BlobKeeper& keeper;
  WorkerPool& pool;   // sources of synchronous uploads are fetched here (not the job runner's)
  EventSink& events;  // jobs queued (the runner and the keeper report the rest)
};

class PackageService {
 public:
  explicit PackageService(ServicePorts ports, ServiceOptions options = {});
  ~PackageService();

  // Synchronous upload: every source is fetched and stored durably, then the metadata change
  // is committed in one transaction. Any failure leaves the previous state untouched.
  // Asynchronous upload (is_async): the packages are written UPLOADING and their jobs queued
  // in one transaction; the answer comes at once. kQuotaExceeded when the queue is full.
  Result<UploadResult> Upload(const UploadCommand& command);
  // Direct upload: streams `body` through SHA-256 into a new blob, checks the expected hashes,
  // then commits as Upload does (same pins, same one metadata transaction). Any failure,
  // including a body that ends early or fails, leaves nothing stored.
  Result<PackageRecord> UploadBytes(const DirectUpload& upload, ByteSource& body);
  // Stages content-addressed bytes for a later CommitStaged: the body must hash to `sha256`
  // (kBadRequest otherwise; `signed_sha256` as in DirectUpload). The blob is pinned for
  // staged_blob_ttl_ms. Storing bytes the server already has just renews the pin.
  Result<BlobInfo> StageBlob(const Sha256Hex& sha256, std::int64_t max_bytes,
                             const std::optional<Sha256Hex>& signed_sha256, ByteSource& body);
  // Whether the bytes are stored; when they are, pins them as StageBlob does, so a client that
  // skips staging them can still commit.
  Result<bool> HasBlob(const Sha256Hex& sha256);
  // Makes `group` hold exactly `packages` (1-100 staged blobs, distinct names) in one
  // transaction; all or nothing.
  Result<GroupRecord> CommitStaged(const ProjectId& project, const std::string& owner,
                                   const GroupName& group,
                                   const std::vector<StagedPackage>& packages);
  // Paged (query.paged()): one page read from the store. Otherwise the whole listing, held in
  // memory: answers that may be large use WalkListing instead.
  Result<Listing> List(const ListQuery& query);
  // The unpaginated listing (query.paged() is ignored), batch by batch.
  std::unique_ptr<ListingWalk> WalkListing(const ListQuery& query);
  // kNotFound when absent.
  Result<PackageRecord> Show(const PackageId& id);
  Result<void> Delete(const PackageId& id);
  // kNotFound when the target is absent; kBadRequest when it names neither group nor package.
  Result<void> ChangeOwner(const ProjectId& project, const OwnerTarget& target,
                           const OwnerName& new_owner);
  // Opens a package's stored bytes for download: the current version when READY, the
  // previous one while a replacement is UPLOADING or after it FAILED. kNotFound when none.
  Result<std::unique_ptr<BlobReader>> OpenContent(const PackageId& id);
  // Opens `package`'s bytes for a download, checked while they stream: when they are found not
  // to match its sha256 (or size), the package is marked FAILED with a status_reason and the
  // reader's Read fails with kCorrupted.
  Result<std::unique_ptr<BlobReader>> OpenChecked(const PackageRecord& package);
  // Start-up recovery: removes temporaries, and the blobs no package refers to that were
  // first seen so at least collect_grace ago (MetadataStore::AbandonedBlobs: a new store has
  // seen nothing yet), and returns the hashes it removed (for the log). When the metadata store
  // refers to no blob at all and queues no job while blobs exist, it removes none and fails with
  // kNotSupported, unless `empty_store_expected`: an empty store next to stored bytes is far more
  // likely a deleted, truncated or mistyped database than a wish to delete every package.
  Result<std::vector<std::string>> Sweep(bool empty_store_expected = false);
  // Shutdown: synchronous uploads fetching now stop within about a second (streaming ones at
  // their next chunk of body) and answer kBusy,
  // and new ones are refused; nothing is committed from a cancelled fetch. Irreversible.
  void CancelFetches();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dlipkg
