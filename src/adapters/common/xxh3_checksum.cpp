#include "adapters/common/xxh3_checksum.hpp"

#include <xxhash.h>

#include <new>

#include "adapters/common/sha256.hpp"

namespace dlipkg {
namespace {

class Xxh3Checksum final : public BodyChecksum {
 public:
  Xxh3Checksum() : state_(XXH3_createState()) {
    if (state_ == nullptr || XXH3_128bits_reset(state_) != XXH_OK) {
      XXH3_freeState(state_);
      throw std::bad_alloc();
    }
  }
  ~Xxh3Checksum() override { XXH3_freeState(state_); }
  Xxh3Checksum(const Xxh3Checksum&) = delete;
  Xxh3Checksum& operator=(const Xxh3Checksum&) = delete;

  // XXH3_128bits_update only fails for a null state, which the constructor rules out.
  void Update(std::span<const char> bytes) override {
    (void)XXH3_128bits_update(state_, bytes.data(), bytes.size());
  }
  std::string FinishHex() override {
    XXH128_canonical_t canonical;
    XXH128_canonicalFromHash(&canonical, XXH3_128bits_digest(state_));
    return HexLower(canonical.digest);
  }

 private:
  XXH3_state_t* state_;
};

}  // namespace

std::unique_ptr<BodyChecksum> NewXxh3Checksum() { return std::make_unique<Xxh3Checksum>(); }

}  // namespace dlipkg
