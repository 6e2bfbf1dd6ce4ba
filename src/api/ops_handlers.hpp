// Helpers of the operator's endpoints (GET /metrics, GET /readyz: ops_handlers.cpp, named in
// the route table through handlers.hpp) that other handlers use too. Thread-safe.
#pragma once

#include <cstddef>

#include "api/route.hpp"

namespace dlipkg::api {

// Counts a synchronous upload's packages for /metrics: stored, or failed (all of them: a
// synchronous upload commits all or nothing). Asynchronous ones are counted by their jobs.
void CountSyncUpload(const ApiOptions& options, const Result<UploadResult>& result,
                     std::size_t paths);

// Counts the packages of a direct upload (PUT .../content, a staged group's commit).
void CountDirectUpload(const ApiOptions& options, bool ok, std::size_t packages);

// Counts a refused presigned URL by reason: malformed, expired, signature (altered, another
// package's, or revoked by a key rotation) or error (the key could not be read).
void CountPresignRefusal(const ApiOptions& options, const Error& error);

}  // namespace dlipkg::api
