// Where streamed bytes come from: a client's request body read chunk by chunk by a direct upload.
// The reading side of ByteSink. Blocking; not thread-safe: one reader at a time.
#pragma once

#include <cstddef>
#include <span>

#include "domain/error.hpp"

namespace dlipkg {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to buffer.size() bytes; 0 at the end. Errors (the transfer is over): kBadRequest
  // (the sender went away, stalled or sent malformed framing), kInternal.
  virtual Result<std::size_t> Read(std::span<char> buffer) = 0;
};

}  // namespace dlipkg
