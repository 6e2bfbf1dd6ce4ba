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
  // The next bytes, at most scratch.size(): read into `scratch`, or lent from the source's own
  // buffer when it has them there already (no copy). Valid until the next call on the source; empty
  // at the end. Errors as Read. The default reads into `scratch`.
  virtual Result<std::span<const char>> Lend(std::span<char> scratch) {
    auto got = Read(scratch);
    if (!got) return std::unexpected(got.error());
    return std::span<const char>(scratch.data(), *got);
  }
};

}  // namespace dlipkg
