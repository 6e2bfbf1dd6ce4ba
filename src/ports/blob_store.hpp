// Content-addressed store of package bytes (SHA-256 hex as the key).
// Used by the core for uploads, downloads and reclamation. Implementations block (disk, network)
// and must be safe to call from many threads at once; a single Writer/Reader is used by one
// thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "domain/error.hpp"
#include "ports/byte_sink.hpp"

namespace dlipkg {

struct BlobInfo {
  std::string sha256;  // lower-case hex
  std::int64_t size = 0;
};

// A blob being written. Bytes are hashed while they stream in and land in temporary storage;
// nothing is visible under a key until Commit. Destroying an uncommitted writer discards it.
class BlobWriter : public ByteSink {
 public:
  // Makes the bytes durable (fsync or completed upload) under their SHA-256 and returns it:
  // Seal, Publish and SyncPublished in one.
  // If a blob with that hash already exists, the new copy is discarded and the existing one
  // kept, where the store can tell that it holds these bytes; one that does not (altered on
  // disk) is replaced by the new copy. Errors: kInternal (storage failure). After Commit the
  // writer is spent.
  virtual Result<BlobInfo> Commit() = 0;
  // Ends the writing and returns the bytes' SHA-256 and size, before anything is published:
  // the caller pins the hash before Commit, so that a concurrent reclaim of an existing copy
  // either finishes first (Commit then writes these bytes) or sees the pin. May make the bytes
  // durable in temporary storage (the slow part of Commit: an fsync), so that a Commit after
  // it only publishes them. Commit seals an unsealed writer itself. Nothing may be written
  // after it; calling it again returns the same. Errors: kInternal, and the writer is spent.
  virtual Result<BlobInfo> Seal() = 0;

  // Hooks for committing many writers together (a batch shares the waits for the disk): call
  // BeginSeal on each, then Seal on each, then Publish on each, then SyncPublished on each.
  // BeginSeal starts making the written bytes durable without waiting for it (a Seal after it
  // then waits for bytes already on their way); writing after it is still allowed. Errors:
  // kInternal, and the writer is spent. The default does nothing.
  virtual Result<void> BeginSeal() { return {}; }
  // Commit, except that the blob's name may not be durable until SyncPublished returns: nothing
  // may be told the blob is stored before that. Errors: as Commit's. The default is Commit.
  virtual Result<BlobInfo> Publish() { return Commit(); }
  // After a successful Publish: makes the blob's name durable. Errors: kInternal (the blob
  // may or may not survive a crash: treat it as not stored). The default does nothing.
  virtual Result<void> SyncPublished() { return {}; }
};

// The bytes a reader has left, as a region of a file it holds open (valid while the reader lives).
struct FileRegion {
  int fd = -1;
  std::int64_t offset = 0;
  std::int64_t length = 0;
};

// A committed blob being read. Readers of the stores check the bytes against the blob's key
// (its SHA-256) as they stream: the Read that would hand out the last bytes of a blob whose
// bytes do not match fails with kCorrupted instead, so no caller ever completes a transfer of
// wrong bytes. After a Seek past the start there is no whole blob to check, and none is made.
class BlobReader {
 public:
  virtual ~BlobReader() = default;
  // Bytes from the Seek offset (the start, without one) to the end; reading does not change
  // it (the blob contract pins this).
  virtual std::int64_t Size() const = 0;
  // Reads up to buffer.size() bytes; 0 at the end. Errors: kInternal, kCorrupted.
  virtual Result<std::size_t> Read(std::span<char> buffer) = 0;
  // Before the first Read: skips `offset` bytes (a ranged download), so Size() shrinks by it.
  // Errors: kBadRequest (offset past the end), kInternal.
  virtual Result<void> Seek(std::int64_t offset) = 0;

  // Zero-copy sending (sendfile). Offered only when the remaining bytes need no hashing while
  // they stream: a range, or a whole blob whose SHA-256 was verified since its file last
  // changed. A caller that sends the region instead of calling Read must call ConfirmUnchanged
  // before it sends the region's last bytes. Non-blocking. nullopt: use Read.
  virtual std::optional<FileRegion> Region() { return std::nullopt; }
  // Whether the file still is the one that was verified. Errors: kCorrupted (it changed since:
  // do not complete the transfer), kInternal. May block (a store reports the corruption).
  virtual Result<void> ConfirmUnchanged() { return {}; }
};

class BlobStore {
 public:
  virtual ~BlobStore() = default;
  // Starts a new blob. Errors: kInternal.
  virtual Result<std::unique_ptr<BlobWriter>> Create() = 0;
  // Opens a committed blob. Errors: kNotFound, kInternal.
  virtual Result<std::unique_ptr<BlobReader>> Open(const std::string& sha256) = 0;
  virtual Result<bool> Exists(const std::string& sha256) = 0;
  // Removes a committed blob; removing a missing one succeeds. Errors: kInternal.
  virtual Result<void> Remove(const std::string& sha256) = 0;
  // Every committed blob's hash (for sweeping unreferenced ones).
  virtual Result<std::vector<std::string>> List() = 0;
  // Deletes temporaries (and, in a bucket, unfinished multipart uploads) left by writers that
  // never committed (a crash), of those at least `min_age` old: 0 is all of them (start-up,
  // with no writer alive); live writers of this or another instance keep theirs as long as
  // they are younger. Returns how many were deleted.
  virtual Result<std::size_t> SweepTemporaries(std::chrono::milliseconds min_age) = 0;
};

}  // namespace dlipkg
