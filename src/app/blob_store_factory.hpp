// Opens the blob store that --blobs names: a directory (embedded, one instance) or an S3 bucket
// (shared by any number of instances), the bucket's endpoint and keys taken from the entry of
// `object_stores` (the --object-stores file, read once by the caller) serving it. Used once by
// the composition root at start-up.
#pragma once

#include <memory>
#include <vector>

#include "adapters/s3/object_stores.hpp"
#include "app/config.hpp"
#include "ports/blob_store.hpp"

namespace dlipkg::app {

// Errors: kBadRequest (no store serves the bucket, bad prefix or sizes), kInternal (the
// directory or the bucket cannot be opened).
Result<std::unique_ptr<BlobStore>> OpenBlobStore(const ServeConfig& config,
                                                 const std::vector<ObjectStore>& object_stores);

}  // namespace dlipkg::app
