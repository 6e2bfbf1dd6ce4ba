#include "app/blob_store_factory.hpp"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "adapters/blobs/fs_blob_store.hpp"
#include "adapters/blobs/s3_blob_store.hpp"
#include "adapters/s3/object_stores.hpp"

namespace dlipkg::app {
namespace {

template <class Store>
Result<std::unique_ptr<BlobStore>> Serving(Result<std::unique_ptr<Store>> opened) {
  if (!opened) return std::unexpected(opened.error());
  return std::unique_ptr<BlobStore>(std::move(*opened));
}

Result<std::unique_ptr<BlobStore>> OpenS3(const S3Blobs& s3, const ServeConfig& config,
                                          const std::vector<ObjectStore>& object_stores) {
  auto stores = ObjectStores::Create(object_stores);
  if (!stores) return std::unexpected(stores.error());
  auto store = stores->StoreForBucket(s3.bucket);
  if (!store) return std::unexpected(store.error());
  spdlog::info("blobs in bucket '{}' (prefix '{}') on object store '{}'", s3.bucket, s3.prefix,
               (*store)->name);
  return Serving(S3BlobStore::Open({.store = **store,
                                    .bucket = s3.bucket,
                                    .prefix = s3.prefix,
                                    .part_bytes = config.blob_part_size,
                                    .max_object_bytes = config.max_object_size}));
}

}  // namespace

Result<std::unique_ptr<BlobStore>> OpenBlobStore(const ServeConfig& config,
                                                 const std::vector<ObjectStore>& object_stores) {
  if (const auto* dir = std::get_if<DirBlobs>(&config.blobs))
    return Serving(FsBlobStore::Open(std::filesystem::path(dir->path)));
  return OpenS3(std::get<S3Blobs>(config.blobs), config, object_stores);
}

}  // namespace dlipkg::app
