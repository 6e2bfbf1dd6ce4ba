// BlobStore on a local directory: <root>/blobs/<2 hex>/<64 hex> for committed blobs and
// <root>/tmp/ for blobs being written. Write path: stream into a temp file while hashing
// (SHA-256), fsync the file, rename into place, fsync the directory.
// Thread-safe; each writer/reader belongs to one thread at a time.
#pragma once

#include <filesystem>
#include <memory>

#include "ports/blob_store.hpp"

namespace dlipkg {

class FsBlobStore final : public BlobStore {
 public:
  // Creates the directories if needed. Errors: kInternal.
  static Result<std::unique_ptr<FsBlobStore>> Open(const std::filesystem::path& root);

  Result<std::unique_ptr<BlobWriter>> Create() override;
  Result<std::unique_ptr<BlobReader>> Open(const std::string& sha256) override;
  Result<bool> Exists(const std::string& sha256) override;
  Result<void> Remove(const std::string& sha256) override;
  Result<std::vector<std::string>> List() override;
  Result<void> SweepTemporaries() override;

 private:
  explicit FsBlobStore(std::filesystem::path root) : root_(std::move(root)) {}
  std::filesystem::path root_;
};

}  // namespace dlipkg
