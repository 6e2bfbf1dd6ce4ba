// MetadataStore on SQLite (WAL mode, synchronous=FULL so a commit survives power loss).
// Schema migrations are versioned (PRAGMA user_version) and applied on Open.
// Thread-safe: calls are serialised on one connection for writes; reads may use their own.
#pragma once

#include <filesystem>
#include <memory>

#include "ports/metadata_store.hpp"

namespace dlipkg {

class SqliteMetadataStore final : public MetadataStore {
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

 private:
  struct Impl;
  explicit SqliteMetadataStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dlipkg
