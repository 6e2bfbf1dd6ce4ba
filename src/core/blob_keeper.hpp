// Decides when stored bytes may be reclaimed. Blobs are shared by content, so a blob that an
// upload has just committed must not be removed by a concurrent delete of the last package
// that used the same bytes before the upload's metadata commit refers to it. Commit pins a
// blob, the caller unpins it after its metadata commit; Reclaim skips pinned blobs and removes
// the others only if no package refers to them. Used by the upload paths and deletes.
// Thread-safe.
#pragma once

#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "ports/blob_store.hpp"
#include "ports/metadata_store.hpp"

namespace dlipkg {

class BlobKeeper {
 public:
  BlobKeeper(MetadataStore& metadata, BlobStore& blobs) : metadata_(metadata), blobs_(blobs) {}

  // Commits the writer and pins the blob. Errors: those of BlobWriter::Commit.
  Result<BlobInfo> CommitPinned(BlobWriter& writer);
  void Unpin(const std::vector<std::string>& shas);
  // Removes the blobs no package refers to and nobody has pinned. Failures only leak bytes
  // (the start-up sweep reclaims them), so they are not reported.
  void Reclaim(const std::vector<std::string>& shas);

 private:
  MetadataStore& metadata_;
  BlobStore& blobs_;
  std::mutex mutex_;  // held across commit/pin and check/remove, so they never interleave
  std::multiset<std::string> pinned_;
};

}  // namespace dlipkg
