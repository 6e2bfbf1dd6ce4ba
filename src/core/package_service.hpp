// The use cases of the resources API: upload (replace or merge a group, or ungrouped), list,
// show, delete, change owner. Pure logic over the ports; no HTTP, JSON, SQL or curl here.
// Blocking (it calls the stores and the fetcher); thread-safe: many requests may run at once.
#pragma once

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
#include "ports/blob_store.hpp"
#include "ports/clock.hpp"
#include "ports/job_queue.hpp"
#include "ports/metadata_store.hpp"
#include "ports/source_fetcher.hpp"

namespace dlipkg {

inline constexpr std::size_t kMaxPathsPerRequest = 100;

enum class GroupMode {
  kReplace,  // the group holds exactly the new packages afterwards (typed uploads, 3.1)
  kMerge,    // same-named packages replaced, others kept (3.2 with a group)
};

struct UploadCommand {
  std::string project;  // validated ProjectId
  std::string owner;    // the authenticated user
  PackageKind kind = PackageKind::kFile;
  std::optional<std::string> group;  // raw (trimmed and validated here); nullopt: ungrouped
  GroupMode mode = GroupMode::kReplace;
  std::vector<std::string> paths;  // source URLs
  std::vector<Tag> tags;
  bool is_async = false;  // queue the fetches and answer at once (merge mode or ungrouped)
};

struct UploadResult {
  std::optional<GroupRecord> group;     // grouped uploads: the whole group afterwards
  std::vector<PackageRecord> packages;  // the packages this request uploaded, request order
};

// Packages on one page at most; also the page size when only an offset or a cursor is given.
inline constexpr std::size_t kMaxPageSize = 1000;

struct ListQuery {
  std::string project;
  std::optional<PackageKind> kind;
  // All must match; a tag with has_value=false matches any value of the key.
  using TagFilter = dlipkg::TagFilter;
  std::vector<TagFilter> tags;
  std::optional<std::size_t> limit;  // packages per page (extension)
  std::size_t offset = 0;
  std::optional<ListPosition> after;  // keyset cursor (extension): packages after this one

  bool paged() const { return limit.has_value() || offset > 0 || after.has_value(); }
  PackageFilter filter() const { return PackageFilter{kind, tags}; }
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
  std::string after_;  // the last name read in this phase
};

struct ServiceOptions {
  std::size_t max_queued_jobs = 100'000;     // asynchronous uploads waiting at most
  std::int64_t job_deadline_ms = 3'600'000;  // an async upload fails after this long
  std::function<void()> on_enqueued;         // wakes the job runner
};

// What the service works with. The job queue and the metadata store are usually one object.
struct ServicePorts {
  MetadataStore& metadata;
  JobQueue& jobs;
  BlobStore& blobs;
  SourceFetcher& fetcher;
  const Clock& clock;
  BlobKeeper& keeper;
  WorkerPool& pool;  // sources of synchronous uploads are fetched here
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
  // Paged (query.paged()): one page read from the store. Otherwise the whole listing, held in
  // memory: answers that may be large use WalkListing instead.
  Result<Listing> List(const ListQuery& query);
  // The unpaginated listing (query.paged() is ignored), batch by batch.
  std::unique_ptr<ListingWalk> WalkListing(const ListQuery& query);
  // group "" for an ungrouped package. kNotFound when absent.
  Result<PackageRecord> Show(const std::string& project, const std::string& group,
                             const std::string& name);
  Result<void> Delete(const std::string& project, const std::string& group,
                      const std::string& name);
  // Exactly one of: group only (group and its packages), name only (ungrouped package),
  // both (package in group). kNotFound when the target is absent.
  Result<void> ChangeOwner(const std::string& project, const std::optional<std::string>& group,
                           const std::optional<std::string>& name, const std::string& new_owner);
  // Opens a package's stored bytes for download: the current version when READY, the
  // previous one while a replacement is UPLOADING or after it FAILED. kNotFound when none.
  Result<std::unique_ptr<BlobReader>> OpenContent(const std::string& project,
                                                  const std::string& group,
                                                  const std::string& name);
  // Start-up recovery: removes temporaries and blobs no package refers to.
  Result<void> Sweep();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dlipkg
