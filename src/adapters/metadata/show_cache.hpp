// Packages recently read by GetPackage, each kept with the store's change version it was read
// at (SqlTransactions::ChangeVersion), so that a repeated show of an unchanged package needs no
// database read. Only entries of the current version are ever returned: any committed write
// moves the version, which empties the cache. Bounded (kMaxEntries). Used by SqlMetadataStore.
// Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "adapters/metadata/metadata_sql.hpp"
#include "ports/metadata_store.hpp"

namespace dlipkg {

class ShowCache {
 public:
  // Enough for the packages a busy server shows over and over; past it, the cache starts over.
  static constexpr std::size_t kMaxEntries = 4096;

  // The package kept for this key at exactly `version`, if any.
  std::optional<PackageRecord> Find(std::string_view project, std::string_view group,
                                    std::string_view name, std::uint64_t version) {
    const std::string key = JoinedPackageKey(project, group, name);
    std::lock_guard lock(mutex_);
    if (version != version_) return std::nullopt;
    const auto found = entries_.find(key);
    if (found == entries_.end()) return std::nullopt;
    return found->second;
  }

  // Keeps `package`, read in a snapshot taken after `version` was read (so it is at least as
  // new as that version). An entry of an older version than the cache's is dropped; a newer one
  // replaces everything the cache held.
  void Keep(std::string_view project, std::string_view group, std::string_view name,
            const PackageRecord& package, std::uint64_t version) {
    std::string key = JoinedPackageKey(project, group, name);
    std::lock_guard lock(mutex_);
    if (version < version_) return;
    if (version > version_ || entries_.size() >= kMaxEntries) {
      entries_.clear();
      version_ = version;
    }
    entries_.insert_or_assign(std::move(key), package);
  }

 private:
  std::mutex mutex_;
  std::uint64_t version_ = 0;
  std::unordered_map<std::string, PackageRecord> entries_;  // all read at version_
};

}  // namespace dlipkg
