// BlobStore on a local directory: <root>/blobs/<2 hex>/<64 hex> for committed blobs (the 256
// fan-out directories are made at Open) and <root>/tmp/ for blobs being written. Write path: stream
// into a temp file while hashing (SHA-256), fsync the file, rename into place, fsync the directory.
// Keys must be 64 lower-case hex characters; anything else is refused before a path is built
// (Open: kNotFound, Exists: false, Remove: kBadRequest), so no caller string can leave the root.
// Downloads hash every byte until a whole read has verified a blob; the file's identity (inode,
// size, mtime, ctime) is then remembered for a while, and later full reads of the unchanged file
// are served unhashed, as a file region the server can sendfile(2).
// Thread-safe; each writer/reader belongs to one thread at a time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>

#include "ports/blob_store.hpp"
#include "ports/readiness_probe.hpp"

namespace dlipkg {

class FsBlobStore final : public BlobStore, public ReadinessProbe {
 public:
  // Creates the directories if needed. Errors: kInternal.
  static Result<std::unique_ptr<FsBlobStore>> Open(const std::filesystem::path& root);
  ~FsBlobStore() override;

  Result<std::unique_ptr<BlobWriter>> Create() override;
  Result<std::unique_ptr<BlobReader>> Open(const std::string& sha256) override;
  Result<bool> Exists(const std::string& sha256) override;
  Result<void> Remove(const std::string& sha256) override;
  Result<std::vector<std::string>> List() override;
  Result<std::size_t> SweepTemporaries(std::chrono::milliseconds min_age) override;
  // Both directories exist and are writable.
  Result<void> CheckReady() override;
  // How many fsyncs of fan-out directories writers have made (a writer whose rename another's
  // sync already covered makes none).
  std::uint64_t DirectorySyncCount() const;

  class DirectorySyncs;  // public so that the store's writers can hold it

 private:
  class VerifiedBlobs;
  explicit FsBlobStore(const std::filesystem::path& root);
  std::filesystem::path BlobPath(const std::string& sha256) const;
  // Makes the fan-out directories blobs/00 .. blobs/ff that are missing.
  Result<void> MakeFanOutDirectories();

  std::filesystem::path blobs_dir_;
  std::filesystem::path temp_dir_;           // same file system as blobs_dir_, so rename is atomic
  std::shared_ptr<VerifiedBlobs> verified_;  // shared with readers, which may outlive a request
  std::shared_ptr<DirectorySyncs> syncs_;    // shared with writers, which may outlive the store
};

}  // namespace dlipkg
