// MetadataStore and JobQueue on SQLite, in one file so enqueueing is one transaction
// (WAL mode, synchronous=FULL so a commit survives power loss).
// Schema migrations are versioned (PRAGMA user_version) and applied on Open.
// Thread-safe: calls are serialised on one connection for writes; reads may use their own.
#pragma once

#include <filesystem>
#include <memory>

#include "ports/job_queue.hpp"
#include "ports/metadata_store.hpp"

namespace dlipkg {

class SqliteMetadataStore final : public MetadataStore, public JobQueue {
 public:
  // Opens or creates the database file. Errors: kInternal.
  static Result<std::unique_ptr<SqliteMetadataStore>> Open(const std::filesystem::path& file);
  ~SqliteMetadataStore() override;

  Result<GroupRecord> ReplaceGroup(const GroupRecord& group,
                                   const std::vector<PackageRecord>& packages) override;
  Result<GroupRecord> MergeIntoGroup(const GroupRecord& group,
                                     const std::vector<PackageRecord>& packages) override;
  Result<std::vector<PackageRecord>> PutUngrouped(
      const std::vector<PackageRecord>& packages) override;
  Result<std::optional<PackageRecord>> GetPackage(const std::string& project,
                                                  const std::string& group,
                                                  const std::string& name) override;
  Result<std::optional<GroupRecord>> GetGroup(const std::string& project,
                                              const std::string& name) override;
  Result<ProjectContents> ListProject(const std::string& project) override;
  Result<PackageRecord> DeletePackage(const std::string& project, const std::string& group,
                                      const std::string& name) override;
  Result<void> SetGroupOwner(const std::string& project, const std::string& group,
                             const std::string& owner, std::int64_t now_ms) override;
  Result<void> SetPackageOwner(const std::string& project, const std::string& group,
                               const std::string& name, const std::string& owner,
                               std::int64_t now_ms) override;
  Result<bool> IsBlobReferenced(const std::string& sha256) override;
  Result<std::vector<std::string>> ReferencedBlobs() override;

  Result<EnqueuedUploads> EnqueueUploads(const std::optional<GroupRecord>& group,
                                         const std::vector<PackageRecord>& packages,
                                         const std::vector<std::string>& urls,
                                         std::int64_t deadline_ms,
                                         std::size_t max_queued) override;
  Result<std::optional<UploadJob>> ClaimJob(const std::string& worker, std::int64_t now_ms,
                                            std::int64_t lease_until_ms) override;
  Result<bool> RenewLease(std::int64_t job_id, const std::string& worker,
                          std::int64_t lease_until_ms) override;
  Result<std::optional<std::string>> CompleteJob(const UploadJob& job, const std::string& worker,
                                                 const BlobInfo& blob,
                                                 const std::string& underlying_name,
                                                 std::int64_t now_ms) override;
  Result<void> RetryJob(const UploadJob& job, const std::string& worker,
                        std::int64_t next_attempt_ms, const std::string& reason) override;
  Result<void> FailJob(const UploadJob& job, const std::string& worker, const std::string& reason,
                       std::int64_t now_ms) override;
  Result<std::size_t> RecoverAfterRestart(std::int64_t now_ms) override;
  Result<std::size_t> CountQueued() override;

 private:
  struct Impl;
  explicit SqliteMetadataStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dlipkg
