// A BlobReader decorator that hashes a blob's bytes as they are read and, before handing out the
// last of them, compares the SHA-256 with the blob's key: on a mismatch that Read fails with
// kCorrupted, so a transfer of altered bytes is never completed. Both blob stores wrap their
// readers in it. After a Seek past the start it only passes bytes through (no whole blob to
// check) and offers the inner reader's Region. One reader per transfer; not thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "adapters/common/sha256.hpp"
#include "ports/blob_store.hpp"

namespace dlipkg {

class VerifyingReader final : public BlobReader {
 public:
  // `on_verified` (optional) runs once, inside the Read that finds the whole blob matching.
  VerifyingReader(std::unique_ptr<BlobReader> raw, std::string sha256,
                  std::function<void()> on_verified = {});

  std::int64_t Size() const override { return raw_->Size(); }
  Result<std::size_t> Read(std::span<char> buffer) override;
  Result<void> Seek(std::int64_t offset) override;
  std::optional<FileRegion> Region() override;
  Result<void> ConfirmUnchanged() override { return raw_->ConfirmUnchanged(); }

 private:
  std::unique_ptr<BlobReader> raw_;
  const std::string sha256_;
  const std::int64_t size_;
  std::function<void()> on_verified_;
  std::int64_t read_ = 0;
  bool checking_ = true;
  Sha256Hasher hasher_;
};

}  // namespace dlipkg
