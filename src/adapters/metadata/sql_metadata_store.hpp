// MetadataStore and JobQueue over a SQL engine: each call runs MetadataSql's logic in one
// transaction that the engine's SqlTransactions opens. SqliteMetadataStore and
// PostgresMetadataStore are this class with their own engine, dialect and start-up policy.
// Thread-safe when the engine is (both are).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "adapters/metadata/metadata_sql.hpp"
#include "adapters/metadata/show_batcher.hpp"
#include "adapters/metadata/show_cache.hpp"
#include "adapters/metadata/sql_session.hpp"
#include "ports/job_queue.hpp"
#include "ports/metadata_store.hpp"
#include "ports/readiness_probe.hpp"
#include "ports/url_key_store.hpp"

namespace dlipkg {

class SqlTransactions {
 public:
  using Body = std::function<Result<void>(sql::Session&)>;
  virtual ~SqlTransactions() = default;
  // Runs `body` in a transaction that admits its writes and commits when it succeeds. The
  // engine may run it again after a conflict or on a fresh connection, so a body starts its
  // results afresh each time.
  virtual Result<void> Write(const Body& body) = 0;
  // Like Write, for queue bookkeeping whose loss in a crash or power cut is harmless (a claim,
  // a lease renewal, a retry time: the job only becomes claimable again), so the engine may
  // commit it without waiting for the disk. Package states clients see always use Write.
  virtual Result<void> WriteBookkeeping(const Body& body) { return Write(body); }
  // Runs `body` in a read-only transaction that sees one committed state throughout.
  virtual Result<void> Read(const Body& body) = 0;
  // Like Read, for a body that runs exactly one statement, which sees one state by itself:
  // the engine may skip the explicit transaction (a round trip each way on a networked one).
  virtual Result<void> ReadOne(const Body& body) { return Read(body); }
  // Whether the engine still works on the store it opened (a file deleted or replaced under
  // it is not), for the readiness check; no query. Errors: kInternal, naming no path.
  virtual Result<void> CheckIntact() const = 0;
  // A number that moves whenever a transaction that may have written commits, through any
  // connection that can write the store (this object's or another's); nullopt when the engine
  // cannot tell (another process may write unseen). Read before a read transaction begins, a
  // value still current after it says no write committed since that transaction's snapshot
  // could have been taken: what the store read then is still what is stored.
  virtual std::optional<std::uint64_t> ChangeVersion() const { return std::nullopt; }
  // A connection held for a Pipeline of single statements, or null where the engine has none
  // (in-process SQLite gains nothing by sending ahead) or where too many are held already
  // (a pipeline keeps its connection from other calls until it ends).
  virtual std::unique_ptr<sql::Pipeline> OpenPipeline() { return nullptr; }
};

class SqlMetadataStore : public MetadataStore,
                         public JobQueue,
                         public UrlKeyStore,
                         public ReadinessProbe {
 public:
  ~SqlMetadataStore() override;

  Result<GroupRecord> ReplaceGroup(const GroupRecord& group,
                                   const std::vector<PackageRecord>& packages,
                                   std::vector<std::string>* replaced = nullptr,
                                   const BlobCheck* check = nullptr) override;
  Result<GroupRecord> MergeIntoGroup(const GroupRecord& group,
                                     const std::vector<PackageRecord>& packages,
                                     std::vector<std::string>* replaced = nullptr,
                                     const BlobCheck* check = nullptr) override;
  Result<std::vector<PackageRecord>> PutUngrouped(const std::vector<PackageRecord>& packages,
                                                  std::vector<std::string>* replaced = nullptr,
                                                  const BlobCheck* check = nullptr) override;
  Result<std::optional<PackageRecord>> GetPackage(const std::string& project,
                                                  const std::string& group,
                                                  const std::string& name) override;
  Result<std::optional<GroupRecord>> GetGroup(const std::string& project,
                                              const std::string& name) override;
  Result<ProjectContents> ListProject(const std::string& project) override;
  Result<PackagePage> ListPage(const PageRequest& request) override;
  Result<std::vector<PackageRecord>> ListUngrouped(const std::string& project,
                                                   const PackageFilter& filter,
                                                   const std::string& after_name,
                                                   std::size_t limit) override;
  Result<GroupBatch> ListGroups(const std::string& project, const PackageFilter& filter,
                                const std::string& after_group, std::size_t max_groups) override;
  // Over the engine's Pipeline, where it has one free: each batch's statement is sent as soon
  // as the one before has its rows; else ListGroups in turn.
  std::unique_ptr<GroupWalk> WalkGroups(const std::string& project, const PackageFilter& filter,
                                        std::size_t max_groups) override;
  Result<PackageRecord> DeletePackage(const std::string& project, const std::string& group,
                                      const std::string& name) override;
  Result<void> SetGroupOwner(const std::string& project, const std::string& group,
                             const std::string& owner, std::int64_t now_ms) override;
  Result<void> SetPackageOwner(const std::string& project, const std::string& group,
                               const std::string& name, const std::string& owner,
                               std::int64_t now_ms) override;
  Result<void> MarkCorrupt(const std::string& project, const std::string& group,
                           const std::string& name, const std::string& sha256,
                           const std::string& reason, std::int64_t now_ms) override;
  Result<bool> IsBlobReferenced(const std::string& sha256) override;
  Result<std::vector<std::string>> ReferencedBlobs() override;
  Result<void> PinBlob(const std::string& sha256, const std::string& pin_id,
                       std::int64_t until_ms) override;
  Result<void> UnpinBlob(const std::string& sha256, const std::string& pin_id) override;
  Result<bool> ReclaimBlob(const std::string& sha256, std::int64_t now_ms,
                           const std::function<Result<void>()>& remove) override;

  Result<void> QueueReclaims(const std::vector<std::string>& shas) override;
  Result<std::vector<QueuedReclaim>> DueReclaims(std::int64_t now_ms, std::size_t limit) override;
  Result<void> DeferReclaim(const std::string& sha256, std::int64_t next_attempt_ms) override;
  Result<bool> TakeCollectorLease(const std::string& owner, std::int64_t now_ms,
                                  std::int64_t until_ms) override;
  Result<void> ReleaseCollectorLease(const std::string& owner) override;
  Result<std::vector<std::string>> AbandonedBlobs(const std::vector<std::string>& stored,
                                                  std::int64_t now_ms,
                                                  std::int64_t grace_ms) override;
  Result<std::size_t> DropExpiredPins(std::int64_t now_ms) override;

  Result<std::string> UrlKey(const std::string& candidate, std::int64_t now_ms) override;
  Result<void> RotateUrlKey(const std::string& new_key, std::int64_t now_ms) override;

  Result<EnqueuedUploads> EnqueueUploads(const std::optional<GroupRecord>& group,
                                         const std::vector<PackageRecord>& packages,
                                         const std::vector<std::string>& urls,
                                         std::int64_t deadline_ms, std::size_t max_queued) override;
  Result<std::vector<UploadJob>> ClaimJobs(const std::string& worker, std::int64_t now_ms,
                                           std::int64_t lease_until_ms,
                                           std::size_t max_jobs) override;
  Result<bool> RenewLease(std::int64_t job_id, const std::string& worker,
                          std::int64_t lease_until_ms) override;
  Result<void> ReportProgress(const UploadJob& job, const std::string& worker, std::int64_t bytes,
                              std::int64_t expected) override;
  Result<std::vector<CompletionResult>> CompleteJobs(const std::vector<JobCompletion>& done,
                                                     const std::string& worker,
                                                     std::int64_t now_ms) override;
  Result<void> RetryJob(const UploadJob& job, const std::string& worker,
                        std::int64_t next_attempt_ms, const std::string& reason) override;
  Result<void> FailJob(const UploadJob& job, const std::string& worker, const std::string& reason,
                       std::int64_t now_ms) override;
  Result<std::size_t> RecoverAfterRestart(std::int64_t now_ms) override;
  Result<std::size_t> CountQueued() override;

  // A read that also checks the stored schema version is the one this server writes (another
  // instance may have migrated a shared database further).
  Result<void> CheckReady() override;
  // Called (quickly, from any thread) with "read", "write" or "bookkeeping" whenever a
  // transaction fails with kInternal: for /metrics. Set once, before the store is shared.
  void SetErrorHook(std::function<void(std::string_view operation)> hook) {
    error_hook_ = std::move(hook);
  }

 protected:
  SqlMetadataStore(std::unique_ptr<SqlTransactions> engine, SqlDialect dialect,
                   LeasesAtStart leases_at_start);
  // How CheckReady reads the schema version (one integer) and what it must be.
  void SetSchemaCheck(std::string query, std::int64_t expected) {
    schema_query_ = std::move(query);
    schema_expected_ = expected;
  }

 private:
  template <class Call>
  auto Write(Call&& call);
  template <class Call>
  auto WriteBookkeeping(Call&& call);
  template <class Call>
  auto Read(Call&& call);
  template <class Call>
  auto ReadOne(Call&& call);
  template <class T>
  Result<T> Noted(Result<T> result, std::string_view operation) const;

  std::unique_ptr<SqlTransactions> engine_;
  MetadataSql sql_;
  LeasesAtStart leases_at_start_;

  // Listing totals and marks (ListingMarks), remembered by this instance, so that paging
  // through a large project neither counts it again for every page (a COUNT reads every
  // matching entry) nor passes over every entry before a deep offset. Each is kept with the
  // project's listing version (MetadataSql::ListingVersion) it was read at, and a page uses it
  // only if its own read, in the same snapshot, finds that version still: a write by any
  // instance or process sharing the database changes the version, so no page is ever cut
  // from stale marks, and no instance has to tell another anything.
  struct KeptMarks {
    std::int64_t version = 0;
    ListingMarks marks;
  };
  std::shared_ptr<const KeptMarks> KeptFor(const std::string& key);
  void Keep(const std::string& key, std::shared_ptr<const KeptMarks> marks);
  std::mutex listings_mutex_;
  std::map<std::string, std::shared_ptr<const KeptMarks>> listings_;  // by filter key

  // Shown packages, while no write has committed (engines with a ChangeVersion only).
  ShowCache shows_;
  // Shows arriving together read in one statement (dialects with show_keys only; else null).
  std::unique_ptr<ShowBatcher> show_batcher_;

  std::function<void(std::string_view)> error_hook_;
  std::string schema_query_;
  std::int64_t schema_expected_ = 0;
};

}  // namespace dlipkg
