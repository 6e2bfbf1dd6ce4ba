// BlobStore on an S3-compatible bucket (AWS, OBS, MinIO, Ceph, Swift s3api), signed with SigV4
// by libcurl: <prefix>blobs/<64 hex> for committed blobs, <prefix>tmp/<random> for multipart
// uploads in progress. Used by the app when --blobs is s3://bucket/prefix, so that any number of
// instances share one store. Thread-safe; each writer/reader belongs to one thread at a time.
// Memory per writer is at most one part; per reader, one read chunk.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "adapters/s3/object_stores.hpp"
#include "ports/blob_store.hpp"
#include "ports/readiness_probe.hpp"

namespace dlipkg {

struct S3BlobStoreOptions {
  ObjectStore store;     // endpoint, region, addressing and keys (from --object-stores)
  std::string bucket;    // a valid S3 bucket name the store serves
  std::string prefix{};  // "" or path segments of A-Z a-z 0-9 - _ . (a '/' is appended)
  // Writes up to this size are one PUT straight to the content key (the hash is known by then);
  // larger ones a multipart upload with parts of this size. S3: 5 MiB to 5 GiB.
  std::int64_t part_bytes = 16LL << 20;
  std::int64_t read_chunk_bytes = 8LL << 20;  // one ranged GET per chunk
  // Largest blob accepted (at most 5 GiB): a multipart blob reaches its content key with one
  // CopyObject, which S3 and Swift refuse beyond 5 GiB. (UploadPartCopy would lift that, but
  // libcurl 7.88 signs x-amz-copy-source-range in the wrong order: SignatureDoesNotMatch.)
  std::int64_t max_object_bytes = 5LL << 30;
  std::chrono::seconds connect_timeout{10};
  std::chrono::seconds stall_timeout{60};  // no byte moving for this long fails the request
  bool create_bucket = false;              // tests: make the bucket if it is missing
};

class S3BlobStore final : public BlobStore, public ReadinessProbe {
 public:
  // Validates the options and checks that the bucket answers (HEAD) with these credentials.
  // Errors: kBadRequest (options), kInternal (the bucket is missing or refuses us).
  static Result<std::unique_ptr<S3BlobStore>> Open(S3BlobStoreOptions options);
  ~S3BlobStore() override;

  Result<std::unique_ptr<BlobWriter>> Create() override;
  Result<std::unique_ptr<BlobReader>> Open(const std::string& sha256) override;
  Result<bool> Exists(const std::string& sha256) override;
  Result<void> Remove(const std::string& sha256) override;
  Result<std::vector<std::string>> List() override;
  Result<std::size_t> SweepTemporaries(std::chrono::milliseconds min_age) override;
  // The bucket answers a listing of one key under the prefix.
  Result<void> CheckReady() override;

  // Temporary objects plus multipart uploads in progress under the prefix, of any age: for
  // tests and operators' checks.
  Result<std::size_t> CountTemporaries();

  struct Impl;  // the S3 client

 private:
  explicit S3BlobStore(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;  // shared with writers and readers, which may outlive the store
};

}  // namespace dlipkg
