// Durable metadata: groups and packages per project.
// Used by the core. Every mutating call is one transaction: readers see the state before or
// after it, never a mix. Implementations block (disk, network) and are safe to call from many
// threads at once. Errors: kInternal when the store fails (message without file paths or
// credentials); kNotFound only where stated.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "domain/error.hpp"
#include "domain/records.hpp"

namespace dlipkg {

struct ProjectContents {
  std::vector<GroupRecord> groups;       // ordered by group name, packages in upload order
  std::vector<PackageRecord> ungrouped;  // ordered by name
};

// A package's place in the paged listing order: by group name, then package name; ungrouped
// packages (group "") first.
struct ListPosition {
  std::string group;
  std::string name;
};

struct PageRequest {
  std::string project;
  PackageFilter filter;
  std::size_t limit = 100;
  std::size_t offset = 0;             // matching packages skipped (after `after`, if set)
  std::optional<ListPosition> after;  // keyset: only packages after this position
};

struct PackagePage {
  std::vector<PackageRecord> packages;  // in listing order, with their tags
  std::vector<GroupRecord> groups;      // the groups of those packages (without packages)
  std::size_t total = 0;                // packages of the project matching the filter
};

// A blob whose last reference was dropped, waiting for its bytes to be removed
// (MetadataStore's reclaim queue).
struct QueuedReclaim {
  std::string sha256;
  std::int64_t attempts = 0;  // failed removals so far
};

// What a commit that makes packages refer to freshly stored bytes does about the pins that
// kept those bytes from being reclaimed until then (BlobKeeper): it releases `pins` in its own
// transaction, under each blob's lock, so no separate unpin is written. A pin that ran out
// before the commit left the bytes unprotected for a while: for it the commit asks `exists`
// whether the bytes are still stored, and if they are not it fails (kInternal, retryable)
// and writes nothing.
struct BlobCheck {
  struct Pin {
    std::string sha256;
    std::string pin_id;
  };
  std::vector<Pin> pins;
  std::int64_t now_ms = 0;  // a pin whose expiry is at or before this has run out
  std::function<Result<bool>(const std::string& sha256)> exists;
};

struct GroupBatch {
  // By name, each with its matching packages in upload order. With a filter, groups without
  // a matching package are left out; without one, empty groups are included.
  std::vector<GroupRecord> groups;
  // The last group name looked at, to continue after; nullopt when no group is left.
  std::optional<std::string> next_after;
};

// A project's groups read batch after batch (MetadataStore::WalkGroups). Not thread-safe: one
// caller at a time (which may be a different thread each time).
class GroupWalk {
 public:
  virtual ~GroupWalk() = default;
  // The next batch, as ListGroups gives it after the previous batch's next_after ("" at
  // first); a batch with next_after nullopt is the last. Not called again after the last.
  virtual Result<GroupBatch> Next() = 0;
};

class MetadataStore {
 public:
  virtual ~MetadataStore() = default;

  // Makes group (project, name) hold exactly `packages` (each with project and group set),
  // in that order. An existing group keeps its create_time; owner, description and
  // update_time are taken from `group`. Returns the group as stored.
  // `replaced`, when given, receives the hashes of the packages this call replaced, read in the
  // same transaction under the group's lock (so of racing calls, each reclaims what it
  // replaced, and none the same bytes twice or a set nobody reclaims). Likewise below.
  // `check` (may be null): the pins of the new bytes the packages refer to (BlobCheck).
  virtual Result<GroupRecord> ReplaceGroup(const GroupRecord& group,
                                           const std::vector<PackageRecord>& packages,
                                           std::vector<std::string>* replaced = nullptr,
                                           const BlobCheck* check = nullptr) = 0;

  // Adds `packages` to group (project, name), replacing those with the same name (which keep
  // their create_time and position); creates the group from `group` if absent (an existing
  // group keeps owner, description and create_time; update_time is taken from `group`).
  // Returns the whole group after the merge.
  virtual Result<GroupRecord> MergeIntoGroup(const GroupRecord& group,
                                             const std::vector<PackageRecord>& packages,
                                             std::vector<std::string>* replaced = nullptr,
                                             const BlobCheck* check = nullptr) = 0;

  // Inserts or replaces ungrouped packages (group == ""), keyed by (project, name); a replaced
  // package keeps its create_time. Returns them as stored.
  virtual Result<std::vector<PackageRecord>> PutUngrouped(
      const std::vector<PackageRecord>& packages, std::vector<std::string>* replaced = nullptr,
      const BlobCheck* check = nullptr) = 0;

  // A package; group "" for an ungrouped one. nullopt when absent.
  virtual Result<std::optional<PackageRecord>> GetPackage(const std::string& project,
                                                          const std::string& group,
                                                          const std::string& name) = 0;
  virtual Result<std::optional<GroupRecord>> GetGroup(const std::string& project,
                                                      const std::string& name) = 0;
  virtual Result<ProjectContents> ListProject(const std::string& project) = 0;

  // Listing without reading the whole project. Each call is one snapshot; memory is bounded
  // by its limit (and by the largest group, for ListGroups).
  // One page of the matching packages in listing order, the groups they are in and the count.
  virtual Result<PackagePage> ListPage(const PageRequest& request) = 0;
  // Up to `limit` matching ungrouped packages with names after `after_name` ("" from the
  // start), by name.
  virtual Result<std::vector<PackageRecord>> ListUngrouped(const std::string& project,
                                                           const PackageFilter& filter,
                                                           const std::string& after_name,
                                                           std::size_t limit) = 0;
  // Up to `max_groups` groups with names after `after_group` ("" from the start), by name.
  virtual Result<GroupBatch> ListGroups(const std::string& project, const PackageFilter& filter,
                                        const std::string& after_group, std::size_t max_groups) = 0;
  // The same batches as ListGroups called in turn from the start, each batch one snapshot,
  // but a store may read a batch ahead while the caller handles the one before (a networked
  // store then works while the caller encodes). It may hold resources (a connection) until
  // the walk ends or is destroyed. This default calls ListGroups in turn.
  virtual std::unique_ptr<GroupWalk> WalkGroups(const std::string& project,
                                                const PackageFilter& filter,
                                                std::size_t max_groups);

  // Deletes a package and returns it (so its blob can be reclaimed). kNotFound when absent.
  virtual Result<PackageRecord> DeletePackage(const std::string& project, const std::string& group,
                                              const std::string& name) = 0;

  // Sets the owner of a group and all its packages. kNotFound when the group is absent.
  virtual Result<void> SetGroupOwner(const std::string& project, const std::string& group,
                                     const std::string& owner, std::int64_t now_ms) = 0;
  // Sets the owner of one package (group "" for ungrouped). kNotFound when absent.
  virtual Result<void> SetPackageOwner(const std::string& project, const std::string& group,
                                       const std::string& name, const std::string& owner,
                                       std::int64_t now_ms) = 0;

  // A package whose stored bytes were found not to match its sha256 (a download checked them)
  // becomes FAILED with `reason`, if it still refers to `sha256`. kNotFound when absent.
  virtual Result<void> MarkCorrupt(const std::string& project, const std::string& group,
                                   const std::string& name, const std::string& sha256,
                                   const std::string& reason, std::int64_t now_ms) = 0;

  // Whether any package in any project refers to the blob.
  virtual Result<bool> IsBlobReferenced(const std::string& sha256) = 0;
  // Every blob hash referred to by some package.
  virtual Result<std::vector<std::string>> ReferencedBlobs() = 0;

  // Reclaiming bytes safely across instances that share the store. Blobs are shared by
  // content, so an upload that has just committed bytes pins them (pin_id unique to it) until
  // `until_ms`, UnpinBlob, or the commit that makes its package refer to them (BlobCheck),
  // covering the time until then. ReclaimBlob
  // calls `remove` (which deletes the bytes) only when no package refers to the blob and no
  // live pin holds it, under the blob's lock: a PinBlob of the same hash waits until it is
  // done. So after PinBlob the uploader checks the bytes still exist; if a reclaim came first,
  // they are gone and the upload must not be committed. PinBlob on an existing (sha256, pin_id)
  // moves its expiry. ReclaimBlob returns whether it removed; an error from `remove` is
  // returned as is and nothing changes.
  // ReclaimBlob also forgets the blob's reclaim-queue row and sighting when it removes the
  // blob or finds it referenced (a pinned blob keeps its row: the pin may run out).
  virtual Result<void> PinBlob(const std::string& sha256, const std::string& pin_id,
                               std::int64_t until_ms) = 0;
  virtual Result<void> UnpinBlob(const std::string& sha256, const std::string& pin_id) = 0;
  virtual Result<bool> ReclaimBlob(const std::string& sha256, std::int64_t now_ms,
                                   const std::function<Result<void>()>& remove) = 0;

  // The reclaim queue: reclamation that a crash or a store outage cannot make us forget.
  // ReplaceGroup, MergeIntoGroup, PutUngrouped, DeletePackage and JobQueue::CompleteJobs queue
  // each hash whose last reference they drop, in their own transaction; the row goes when
  // ReclaimBlob removes the bytes or finds them referenced again. QueueReclaims adds rows
  // (due at once; existing ones are kept as they are). DueReclaims returns up to `limit` rows
  // due at `now_ms`, least attempted first. DeferReclaim counts a failed removal and makes the
  // row due again at `next_attempt_ms`.
  virtual Result<void> QueueReclaims(const std::vector<std::string>& shas) = 0;
  virtual Result<std::vector<QueuedReclaim>> DueReclaims(std::int64_t now_ms,
                                                         std::size_t limit) = 0;
  virtual Result<void> DeferReclaim(const std::string& sha256, std::int64_t next_attempt_ms) = 0;

  // The periodic collector's lease: one instance at a time collects. Takes (or renews, for
  // the same owner) the lease until `until_ms` when it is free or ran out at `now_ms`;
  // returns whether `owner` holds it now. ReleaseCollectorLease frees it if `owner` holds it.
  virtual Result<bool> TakeCollectorLease(const std::string& owner, std::int64_t now_ms,
                                          std::int64_t until_ms) = 0;
  virtual Result<void> ReleaseCollectorLease(const std::string& owner) = 0;
  // Bug 5's recorded grace period. Of `stored` (hashes found in the blob store), records when
  // each was first seen with no reference and no live pin (a sighting, kept in the store),
  // forgets the sightings of pinned ones and of every blob referenced now (in `stored` or
  // not), and returns those first seen so at or before now_ms - grace_ms: the blobs provably
  // abandoned for the grace period. A new store has no sightings, so it proves nothing
  // abandoned before a grace period has passed.
  virtual Result<std::vector<std::string>> AbandonedBlobs(const std::vector<std::string>& stored,
                                                          std::int64_t now_ms,
                                                          std::int64_t grace_ms) = 0;
  // Deletes the pins that ran out at `now_ms` (of uploads that died); returns how many.
  virtual Result<std::size_t> DropExpiredPins(std::int64_t now_ms) = 0;
};

// ListGroups in turn: the walk of a store that reads nothing ahead.
class SequentialGroupWalk final : public GroupWalk {
 public:
  SequentialGroupWalk(MetadataStore& store, std::string project, PackageFilter filter,
                      std::size_t max_groups)
      : store_(store),
        project_(std::move(project)),
        filter_(std::move(filter)),
        max_groups_(max_groups) {}
  Result<GroupBatch> Next() override {
    auto batch = store_.ListGroups(project_, filter_, after_, max_groups_);
    if (batch && batch->next_after) after_ = *batch->next_after;
    return batch;
  }

 private:
  MetadataStore& store_;
  const std::string project_;
  const PackageFilter filter_;
  const std::size_t max_groups_;
  std::string after_;
};

inline std::unique_ptr<GroupWalk> MetadataStore::WalkGroups(const std::string& project,
                                                            const PackageFilter& filter,
                                                            std::size_t max_groups) {
  return std::make_unique<SequentialGroupWalk>(*this, project, filter, max_groups);
}

}  // namespace dlipkg
