// The unpaginated listing answer written while it is read: a BlobReader of unknown size (the
// HTTP layer sends it chunked) that encodes a ListingWalk's batches into exactly the bytes
// EncodeListing would give for the whole listing, holding one batch at a time.
// Used by ResourcesApi for GET /resources without paging. Not thread-safe: one reader per
// response, read by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/package_service.hpp"
#include "ports/blob_store.hpp"

namespace dlipkg::api {

class ListingStream final : public BlobReader {
 public:
  // `modules_json`: EncodeModules of the configured modules.
  ListingStream(std::unique_ptr<ListingWalk> walk, std::string modules_json);
  // Reads the first batch, so that a store failing at once gets an error answer rather than
  // a connection cut after the status line.
  Result<void> Start();
  std::int64_t Size() const override { return -1; }  // unknown until the walk ends
  Result<std::size_t> Read(std::span<char> buffer) override;
  // A listing is read once, front to back (no ranges of it are served).
  Result<void> Seek(std::int64_t) override {
    return Fail(ErrorCode::kInternal, "a listing cannot be read from an offset");
  }

 private:
  // Appends the next batch (or the end of the answer) to pending_.
  Result<void> Refill();
  void Append(const ListingWalk::Batch& batch);
  void Finish();

  std::unique_ptr<ListingWalk> walk_;
  const std::string modules_json_;
  ListingWalk::Batch batch_;  // reused: its vectors keep their capacity
  std::string pending_;       // encoded, not yet read
  std::size_t read_ = 0;      // of pending_
  bool in_groups_ = false;    // the "groups" array has been opened
  bool first_in_array_ = true;
  bool finished_ = false;  // the whole answer is in pending_
  std::size_t total_ = 0;
};

}  // namespace dlipkg::api
