// The use cases of the resources API: upload (replace or merge a group, or ungrouped), list,
// show, delete, change owner. Pure logic over the ports; no HTTP, JSON, SQL or curl here.
// Blocking (it calls the stores and the fetcher); thread-safe: many requests may run at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "domain/error.hpp"
#include "domain/records.hpp"
#include "ports/blob_store.hpp"
#include "ports/clock.hpp"
#include "ports/metadata_store.hpp"
#include "ports/source_fetcher.hpp"

namespace dlipkg {

inline constexpr std::size_t kMaxPathsPerRequest = 100;

enum class GroupMode {
  kReplace,  // the group holds exactly the new packages afterwards (typed uploads, 3.1)
  kMerge,    // same-named packages replaced, others kept (3.2 with a group)
};

struct UploadCommand {
  std::string project;             // validated ProjectId
  std::string owner;               // the authenticated user
  PackageKind kind = PackageKind::kFile;
  std::optional<std::string> group;  // raw (trimmed and validated here); nullopt: ungrouped
  GroupMode mode = GroupMode::kReplace;
  std::vector<std::string> paths;  // source URLs
  std::vector<Tag> tags;
};

struct UploadResult {
  std::optional<GroupRecord> group;     // grouped uploads: the whole group afterwards
  std::vector<PackageRecord> packages;  // the packages this request uploaded, request order
};

struct ListQuery {
  std::string project;
  std::optional<PackageKind> kind;
  // All must match; a tag with has_value=false matches any value of the key.
  struct TagFilter {
    std::string key;
    std::optional<std::string> value;
  };
  std::vector<TagFilter> tags;
  std::optional<std::size_t> limit;  // packages per page (extension)
  std::size_t offset = 0;
};

struct Listing {
  std::vector<PackageRecord> ungrouped;
  std::vector<GroupRecord> groups;  // only groups with a matching package when filtered
  std::size_t total = 0;            // packages listed (after filters, before paging)
};

struct ServiceOptions {
  int parallel_fetches = 4;  // sources of one request fetched at once
};

class PackageService {
 public:
  PackageService(MetadataStore& metadata, BlobStore& blobs, SourceFetcher& fetcher,
                 const Clock& clock, ServiceOptions options = {});
  ~PackageService();

  // Synchronous upload: every source is fetched and stored durably, then the metadata change
  // is committed in one transaction. Any failure leaves the previous state untouched.
  Result<UploadResult> Upload(const UploadCommand& command);
  Result<Listing> List(const ListQuery& query);
  // group "" for an ungrouped package. kNotFound when absent.
  Result<PackageRecord> Show(const std::string& project, const std::string& group,
                             const std::string& name);
  Result<void> Delete(const std::string& project, const std::string& group,
                      const std::string& name);
  // Exactly one of: group only (group and its packages), name only (ungrouped package),
  // both (package in group). kNotFound when the target is absent.
  Result<void> ChangeOwner(const std::string& project, const std::optional<std::string>& group,
                           const std::optional<std::string>& name, const std::string& new_owner);
  // Opens a package's bytes for download. kNotFound when absent or not READY.
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
