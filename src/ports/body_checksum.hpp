// A fast checksum of bytes as they stream through (XXH3-128). A client that asks for it
// (X-Want-Xxh3 on a direct upload) gets the checksum of the body the server received and
// compares it with its own: a guard against bytes altered on the way that costs a few percent
// of a SHA-256. Not a content address: the SHA-256 stays the key of the stored bytes.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>

namespace dlipkg {

// One instance per stream; not thread-safe.
class BodyChecksum {
 public:
  virtual ~BodyChecksum() = default;
  virtual void Update(std::span<const char> bytes) = 0;
  // Lower-case hex of the digest in its canonical (big-endian) form, as `xxhsum -H2` and
  // Python's xxhash.xxh3_128_hexdigest print it. Call once.
  virtual std::string FinishHex() = 0;
};

// Makes a new checksum; safe to call from many threads.
using NewBodyChecksum = std::function<std::unique_ptr<BodyChecksum>()>;

}  // namespace dlipkg
