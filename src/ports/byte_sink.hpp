// Where streamed bytes go: a fetcher writes a source object into a sink chunk by chunk.
// Not thread-safe: one writer at a time (Cancelled may be asked from the fetching thread only).
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "domain/error.hpp"

namespace dlipkg {

class ByteSink {
 public:
  virtual ~ByteSink() = default;
  // Appends `bytes`. An error stops the transfer; the fetcher returns that error.
  virtual Result<void> Write(std::span<const char> bytes) = 0;
  // The source announced its length (Content-Length, a file's size), before the first Write;
  // a hint for progress only: the bytes written are what counts. Not called when unknown.
  virtual void ExpectSize(std::int64_t bytes) {}
  // Asked by the fetcher while it waits for bytes (about once a second, even when the source
  // sends nothing): an error means the transfer must stop now, and the fetcher returns it
  // unchanged. This is how shutdown reaches a fetch stalled on a silent source.
  virtual std::optional<Error> Cancelled() const { return std::nullopt; }
};

}  // namespace dlipkg
