#include "core/blob_keeper.hpp"

namespace dlipkg {

Result<BlobInfo> BlobKeeper::CommitPinned(BlobWriter& writer) {
  std::lock_guard lock(mutex_);
  auto blob = writer.Commit();
  if (blob) pinned_.insert(blob->sha256);
  return blob;
}

void BlobKeeper::Unpin(const std::vector<std::string>& shas) {
  std::lock_guard lock(mutex_);
  for (const auto& sha : shas)
    if (auto it = pinned_.find(sha); it != pinned_.end()) pinned_.erase(it);
}

void BlobKeeper::Reclaim(const std::vector<std::string>& shas) {
  std::lock_guard lock(mutex_);
  for (const auto& sha : std::set<std::string>(shas.begin(), shas.end())) {
    if (sha.empty() || pinned_.contains(sha)) continue;
    auto referenced = metadata_.IsBlobReferenced(sha);
    if (referenced && !*referenced) (void)blobs_.Remove(sha);
  }
}

}  // namespace dlipkg
