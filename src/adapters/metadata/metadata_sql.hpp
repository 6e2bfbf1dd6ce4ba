// The calls of MetadataStore and JobQueue as SQL, shared by the SQLite and PostgreSQL stores so
// that both keep exactly the same semantics: statements, row mapping and each call's logic,
// run inside a transaction the store has opened (writes: one that admits them; reads: one
// snapshot). Where the engines differ (row locks, several writers at once), SqlDialect says how.
// Stateless apart from the dialect: thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/metadata/sql_session.hpp"
#include "ports/job_queue.hpp"
#include "ports/metadata_store.hpp"

namespace dlipkg {

struct SqlDialect {
  // Appended to a SELECT of rows that the transaction goes on to change, so that a concurrent
  // writer of those rows waits for it ("" where writers never overlap).
  std::string_view lock_rows;
  // Appended to the claim query, so that concurrent claimers pass over each other's job.
  std::string_view skip_locked;
  // A statement over ?1 = project and ?2 = group ("" for the ungrouped packages) that makes
  // the writers of that group wait for each other until the ends of their transactions; ""
  // where writers never overlap.
  std::string_view lock_group;
  // A statement that makes enqueuers wait for each other, so the queue bound is exact.
  std::string_view lock_queue;
  // A statement over ?1 = sha256 that makes pinners and reclaimers of that blob wait for each
  // other until the ends of their transactions; "" where writers never overlap.
  std::string_view lock_blob;
  // A function of (text, needle) giving the needle's 1-based position in the text, 0 when it
  // does not occur, comparing bytes (the name filter of a listing).
  std::string_view position_of = "instr";
  // The index that narrows a name filter of 3 or more characters to the packages whose name or
  // group name may contain it, so that a search costs what it finds rather than the project's
  // size (position_of then keeps the result exact, byte for byte).
  enum class NameIndex {
    kNone,
    kFts5Trigram,  // SQLite: the package_names FTS5 table (trigram tokenizer), by rowid
    kTrigramLike,  // PostgreSQL: LIKE '%needle%', which pg_trgm's GIN indexes serve
  };
  NameIndex name_index = NameIndex::kNone;
  // Whether ListMarks has the server find the marks (seeking from each to the next) rather
  // than reading every matching key: the engine is across a network, where each row read
  // costs a transfer.
  bool marks_by_seeking = false;
  // Whether a batch of groups reads its packages, and their tags, by one range of group names
  // each (index range scans, joined by hashing) rather than one index probe per group and
  // per package. PostgreSQL's probes cost about ten times the ranges, and on a plain join its
  // planner may even probe the pg_trgm index (which answers = too, at ~2 ms a probe).
  // SQLite's in-process probes are cheap, and it would run the ranges' joins as probes anyway.
  bool batch_by_ranges = false;
  // A FROM item k(project, group_name, name, i) with one row per key of a batch of shows, the
  // i-th (from 1) from the i-th elements of ?1, ?2 and ?3, each a PostgreSQL array literal of
  // texts; "" where shows are not batched (SQLite: in the process, a statement costs less than
  // waiting for others).
  std::string_view show_keys;
  // A FROM item with one row per element of the JSON array bound at ?J (a text): i, the
  // element's index from 0, and v, the element (an array), whose field k `v ->> k` reads (as
  // text, or as an integer from SQLite). One statement text then writes any number of rows.
  std::string_view json_rows = "(SELECT key AS i, value AS v FROM json_each(?J))";
};

// One package's key, as shown (MetadataStore::GetPackage).
struct PackageKey {
  std::string project;
  std::string group;  // "" for an ungrouped package
  std::string name;
};

// A package key as one string, for maps: the three parts, each ended by a NUL byte, which no
// name holds, so that two keys are equal only when all three parts are.
inline std::string JoinedPackageKey(std::string_view project, std::string_view group,
                                    std::string_view name) {
  std::string key;
  key.reserve(project.size() + group.size() + name.size() + 3);
  key.append(project).push_back('\0');
  key.append(group).push_back('\0');
  key.append(name).push_back('\0');
  return key;
}

// What a store does with job leases at start-up (JobQueue::RecoverAfterRestart).
enum class LeasesAtStart {
  kRelease,  // single instance: whoever held a lease before is gone
  kKeep,     // shared queue: the holders may be other instances, alive; leases run out alone
};

// Refuses a database that a newer server has migrated beyond `latest`, the last schema
// version this server knows: it cannot tell what the newer schema means.
Result<void> CheckSchemaVersion(std::int64_t stored, std::int64_t latest);

// The listing order's keys at regular intervals, from one pass over the matching packages'
// index entries: a page at a deep offset then starts from the mark before it (a seek) instead
// of passing over every entry before it, which an OFFSET does.
struct ListingMarks {
  std::size_t total = 0;  // the packages matching the filter
  std::size_t every = 0;  // marks[i] is the key of the ((i + 1) * every)-th of them (1-based)
  std::vector<ListPosition> marks;
};

class MetadataSql {
 public:
  explicit MetadataSql(SqlDialect dialect) : dialect_(dialect) {}

  // MetadataStore, one call per function, run in the caller's transaction.
  // `replaced` (may be null) receives the hashes of the packages replaced, read under the lock.
  // `check` (may be null): the pins of the new blobs the packages refer to (BlobCheck).
  Result<GroupRecord> ReplaceGroup(sql::Session& s, const GroupRecord& group,
                                   const std::vector<PackageRecord>& packages,
                                   std::vector<std::string>* replaced,
                                   const BlobCheck* check) const;
  Result<GroupRecord> MergeIntoGroup(sql::Session& s, const GroupRecord& group,
                                     const std::vector<PackageRecord>& packages,
                                     std::vector<std::string>* replaced,
                                     const BlobCheck* check) const;
  Result<std::vector<PackageRecord>> PutUngrouped(sql::Session& s,
                                                  const std::vector<PackageRecord>& packages,
                                                  std::vector<std::string>* replaced,
                                                  const BlobCheck* check) const;
  Result<std::optional<PackageRecord>> GetPackage(sql::Session& s, const std::string& project,
                                                  const std::string& group,
                                                  const std::string& name) const;
  // The packages at `keys` (all distinct), in one statement (the dialect's show_keys must be
  // set): answers[i] for keys[i], nullopt where none is stored.
  Result<std::vector<std::optional<PackageRecord>>> GetPackages(
      sql::Session& s, std::span<const PackageKey> keys) const;
  Result<std::optional<GroupRecord>> GetGroup(sql::Session& s, const std::string& project,
                                              const std::string& name) const;
  Result<ProjectContents> ListProject(sql::Session& s, const std::string& project) const;
  // `known_total`: the count of matching packages in this state, when the caller knows it
  // (then it is not counted again).
  Result<PackagePage> ListPage(sql::Session& s, const PageRequest& request,
                               std::optional<std::size_t> known_total = std::nullopt) const;
  // At most about `max_marks` marks, at least `min_every` apart.
  Result<ListingMarks> ListMarks(sql::Session& s, const std::string& project,
                                 const PackageFilter& filter, std::size_t min_every,
                                 std::size_t max_marks) const;
  // A number that grows with every committed change to the project's listing (a package
  // added or removed, its kind or tags changed; kept by the schema's triggers): two reads
  // that see the same number see the same listing keys.
  Result<std::int64_t> ListingVersion(sql::Session& s, const std::string& project) const;
  Result<std::vector<PackageRecord>> ListUngrouped(sql::Session& s, const std::string& project,
                                                   const PackageFilter& filter,
                                                   const std::string& after_name,
                                                   std::size_t limit) const;
  Result<GroupBatch> ListGroups(sql::Session& s, const std::string& project,
                                const PackageFilter& filter, const std::string& after_group,
                                std::size_t max_groups) const;
  // ListGroups in two steps, over a Pipeline: the statement sent (its rows in any order, so
  // the server sorts nothing), then its rows as the batch. LastBatchGroup: the last group
  // among those rows (the last one looked at, which the next batch starts after).
  Result<void> SendGroupBatch(sql::Pipeline& pipeline, const std::string& project,
                              const PackageFilter& filter, const std::string& after_group,
                              std::size_t max_groups) const;
  static Result<GroupBatch> GroupBatchFromRows(const sql::Rows& rows, const std::string& project,
                                               const PackageFilter& filter, std::size_t max_groups);
  static Result<std::string> LastBatchGroup(const sql::Rows& rows);
  // Fills progress (and, after a failed attempt, status_reason) of the UPLOADING ones among
  // `packages` (all of `project`) from their jobs.
  Result<void> AttachProgress(sql::Session& s, const std::string& project,
                              std::vector<PackageRecord*> packages) const;
  Result<void> ReportProgress(sql::Session& s, const UploadJob& job, const std::string& worker,
                              std::int64_t bytes, std::int64_t expected) const;
  Result<PackageRecord> DeletePackage(sql::Session& s, const std::string& project,
                                      const std::string& group, const std::string& name) const;
  Result<void> SetGroupOwner(sql::Session& s, const std::string& project, const std::string& group,
                             const std::string& owner, std::int64_t now_ms) const;
  Result<void> SetPackageOwner(sql::Session& s, const std::string& project,
                               const std::string& group, const std::string& name,
                               const std::string& owner, std::int64_t now_ms) const;
  Result<void> MarkCorrupt(sql::Session& s, const std::string& project, const std::string& group,
                           const std::string& name, const std::string& sha256,
                           const std::string& reason, std::int64_t now_ms) const;
  Result<bool> IsBlobReferenced(sql::Session& s, const std::string& sha256) const;
  Result<std::vector<std::string>> ReferencedBlobs(sql::Session& s) const;
  Result<void> PinBlob(sql::Session& s, const std::string& sha256, const std::string& pin_id,
                       std::int64_t until_ms) const;
  Result<void> UnpinBlob(sql::Session& s, const std::string& sha256,
                         const std::string& pin_id) const;
  Result<bool> ReclaimBlob(sql::Session& s, const std::string& sha256, std::int64_t now_ms,
                           const std::function<Result<void>()>& remove) const;
  Result<void> QueueReclaims(sql::Session& s, const std::vector<std::string>& shas) const;
  Result<std::vector<QueuedReclaim>> DueReclaims(sql::Session& s, std::int64_t now_ms,
                                                 std::size_t limit) const;
  Result<void> DeferReclaim(sql::Session& s, const std::string& sha256,
                            std::int64_t next_attempt_ms) const;
  Result<bool> TakeCollectorLease(sql::Session& s, const std::string& owner, std::int64_t now_ms,
                                  std::int64_t until_ms) const;
  Result<void> ReleaseCollectorLease(sql::Session& s, const std::string& owner) const;
  // One batch of MetadataStore::AbandonedBlobs (the store splits long lists).
  Result<std::vector<std::string>> AbandonedBlobs(sql::Session& s,
                                                  const std::vector<std::string>& stored,
                                                  std::int64_t now_ms, std::int64_t grace_ms) const;
  Result<std::size_t> DropExpiredPins(sql::Session& s, std::int64_t now_ms) const;

  // UrlKeyStore, likewise.
  Result<std::string> UrlKey(sql::Session& s, const std::string& candidate,
                             std::int64_t now_ms) const;
  Result<void> RotateUrlKey(sql::Session& s, const std::string& new_key, std::int64_t now_ms) const;

  // JobQueue, likewise.
  Result<EnqueuedUploads> EnqueueUploads(sql::Session& s, const std::optional<GroupRecord>& group,
                                         const std::vector<PackageRecord>& packages,
                                         const std::vector<std::string>& urls,
                                         std::int64_t deadline_ms, std::size_t max_queued) const;
  Result<std::vector<UploadJob>> ClaimJobs(sql::Session& s, const std::string& worker,
                                           std::int64_t now_ms, std::int64_t lease_until_ms,
                                           std::size_t max_jobs) const;
  Result<bool> RenewLease(sql::Session& s, std::int64_t job_id, const std::string& worker,
                          std::int64_t lease_until_ms) const;
  Result<std::vector<CompletionResult>> CompleteJobs(sql::Session& s,
                                                     const std::vector<JobCompletion>& done,
                                                     const std::string& worker,
                                                     std::int64_t now_ms) const;
  Result<void> RetryJob(sql::Session& s, const UploadJob& job, const std::string& worker,
                        std::int64_t next_attempt_ms, const std::string& reason) const;
  Result<void> FailJob(sql::Session& s, const UploadJob& job, const std::string& worker,
                       const std::string& reason, std::int64_t now_ms) const;
  Result<std::size_t> RecoverAfterRestart(sql::Session& s, std::int64_t now_ms,
                                          LeasesAtStart leases) const;
  Result<std::size_t> CountQueued(sql::Session& s) const;

 private:
  static void EndBatch(GroupBatch& batch, const PackageFilter& filter, std::size_t max_groups);
  Result<void> CollectHashes(sql::Session& s, const std::string& project, const std::string& group,
                             const std::vector<PackageRecord>* names,
                             std::vector<std::string>* out) const;
  // Queues those of `shas` that no package refers to any more (in the transaction that
  // dropped their references).
  Result<void> QueueUnreferenced(sql::Session& s, const std::vector<std::string>& shas) const;
  Result<void> LockGroup(sql::Session& s, std::string_view project, std::string_view group) const;
  Result<ListingMarks> SeekMarks(sql::Session& s, const std::string& project,
                                 const PackageFilter& filter, std::size_t every,
                                 std::size_t max_marks) const;
  Result<bool> StillResponsible(sql::Session& s, const UploadJob& job, const std::string& worker,
                                std::string* stored = nullptr) const;
  // Takes the locks of `shas` (callers lock groups first, then blobs, each sorted).
  Result<void> LockBlobs(sql::Session& s, const std::set<std::string>& shas) const;
  // A commit's BlobCheck: every pinned blob locked, its pin released, and the bytes of one
  // whose pin ran out checked (else a retryable error). `locked`: the blobs are locked already.
  Result<void> ReleasePins(sql::Session& s, const BlobCheck* check, bool locked = false) const;
  // dialect_.json_rows over the JSON array bound at `placeholder` ("?3").
  std::string JsonRows(std::string_view placeholder) const;
  // The steps of EnqueueUploads, each one statement (two for the tags) for all `packages`;
  // `rows`: their fields as the JSON array of EnqueueRows, in request order.
  Result<std::vector<std::int64_t>> InsertJobs(sql::Session& s, const std::string& project,
                                               const std::string& group,
                                               const std::vector<PackageRecord>& packages,
                                               const std::string& rows,
                                               std::int64_t deadline_ms) const;
  Result<void> UpsertUploading(sql::Session& s, const std::string& project,
                               const std::string& group, const std::string& rows) const;
  Result<void> ReplaceTags(sql::Session& s, const std::string& project, const std::string& group,
                           const std::vector<PackageRecord>& packages,
                           const std::string& rows) const;
  // The queued packages as stored, in request order (and the whole group, when grouped).
  Result<EnqueuedUploads> ReadBackQueued(sql::Session& s, const std::string& project,
                                         const std::optional<GroupRecord>& group,
                                         const std::vector<PackageRecord>& packages,
                                         const std::string& rows) const;
  // One completion of CompleteJobs, its locks taken; an error ends the transaction.
  Result<CompletionResult> CompleteOne(sql::Session& s, const JobCompletion& c,
                                       const std::string& worker, std::int64_t now_ms) const;

  SqlDialect dialect_;
};

}  // namespace dlipkg
