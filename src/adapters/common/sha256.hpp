// Streaming SHA-256 (OpenSSL EVP underneath), fed chunk by chunk as bytes pass through the blob
// stores, so an object is hashed without ever being held whole. One instance per stream; not
// thread-safe. OpenSSL can only fail here by running out of memory: reported as std::bad_alloc.
#pragma once

#include <memory>
#include <span>
#include <string>

namespace dlipkg {

// Lower-case hex of a digest.
std::string HexLower(std::span<const unsigned char> bytes);

class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;

  void Update(std::span<const char> bytes);
  // The digest as 64 lower-case hex characters. Call once; the hasher is spent afterwards.
  std::string FinishHex();

 private:
  struct State;  // keeps the OpenSSL context out of this header
  std::unique_ptr<State> state_;
};

}  // namespace dlipkg
