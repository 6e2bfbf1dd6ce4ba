// The shared secret that presigned URLs are signed with, kept in the metadata store so that
// every instance of a deployment sees the same key and it survives restarts. Rotating it
// revokes every URL signed so far. Implemented by the SQL metadata stores (SQLite, PostgreSQL).
// Blocking; thread-safe; several processes may share one store.
#pragma once

#include <cstdint>
#include <string>

#include "domain/error.hpp"

namespace dlipkg {

class UrlKeyStore {
 public:
  virtual ~UrlKeyStore() = default;
  // The stored key; when none is stored yet, stores `candidate` (fresh random bytes, hex) and
  // returns it. Concurrent first calls of several instances agree on one key.
  virtual Result<std::string> UrlKey(const std::string& candidate, std::int64_t now_ms) = 0;
  // Replaces the key with `new_key`.
  virtual Result<void> RotateUrlKey(const std::string& new_key, std::int64_t now_ms) = 0;
};

}  // namespace dlipkg
