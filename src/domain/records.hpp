// Records of packages and groups as the core and the stores exchange them.
// Times are Unix epoch milliseconds. Plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "domain/names.hpp"

namespace dlipkg {

// A package: ungrouped when `group` is empty (group names are never empty).
struct PackageRecord {
  std::string project;
  std::string group;
  std::string name;
  PackageKind kind = PackageKind::kFile;
  PackageStatus status = PackageStatus::kReady;
  std::string sha256;  // hex of the stored bytes ("" while none are stored yet)
  std::int64_t size = 0;
  std::string underlying_name;
  std::string owner;
  std::int64_t create_time = 0;
  std::int64_t update_time = 0;
  bool is_async = false;
  std::string status_reason;  // why FAILED; while UPLOADING, why the last attempt failed
  std::vector<Tag> tags;
  // While an asynchronous upload of the package runs: how far its current attempt got.
  struct Progress {
    std::int64_t bytes_fetched = 0;
    std::int64_t expected_bytes = -1;  // the source's announced length; -1 when unknown
    int attempt = 0;                   // 1 for the first; 0 while still waiting for the first
  };
  std::optional<Progress> progress;  // set for UPLOADING packages with a queued job
};

struct GroupRecord {
  std::string project;
  std::string name;
  std::string owner;
  std::string description;
  std::int64_t create_time = 0;
  std::int64_t update_time = 0;
  std::vector<PackageRecord> packages;  // in upload order
};

// Which packages a listing shows. A tag filter without a value matches any value of the key;
// all filters must match.
struct TagFilter {
  std::string key;
  std::optional<std::string> value;
};
struct PackageFilter {
  std::optional<PackageKind> kind;
  std::vector<TagFilter> tags;
  // "" for none; else only packages whose name or group name contains it (case-sensitive).
  std::string name_contains;
  bool empty() const { return !kind && tags.empty() && name_contains.empty(); }
};

// Roll-up of a group's status (docs/api.md): UPLOADING if any uploading, else FAILED if any
// failed, else READY (an empty group is READY).
PackageStatus RollUpStatus(const std::vector<PackageRecord>& packages);

// The opaque storage name shown as underlying_name: stable for given bytes and name.
std::string UnderlyingName(const std::string& sha256, const std::string& name);

}  // namespace dlipkg
