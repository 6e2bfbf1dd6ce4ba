// "Can you serve now?" asked of a store by GET /readyz. Implemented by the metadata stores (a
// query that also checks the schema version) and the blob stores (a listing of one entry).
// Blocks for one round trip at most; thread-safe.
#pragma once

#include "domain/error.hpp"

namespace dlipkg {

class ReadinessProbe {
 public:
  virtual ~ReadinessProbe() = default;
  // Errors: kInternal, with a message that names the failure but no path, host or credential.
  virtual Result<void> CheckReady() = 0;
};

}  // namespace dlipkg
