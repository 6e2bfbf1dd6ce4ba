#include "adapters/blobs/verifying_reader.hpp"

namespace dlipkg {

VerifyingReader::VerifyingReader(std::unique_ptr<BlobReader> raw, std::string sha256,
                                 std::function<void()> on_verified)
    : raw_(std::move(raw)),
      sha256_(std::move(sha256)),
      size_(raw_->Size()),
      on_verified_(std::move(on_verified)) {}

Result<std::size_t> VerifyingReader::Read(std::span<char> buffer) {
  auto n = raw_->Read(buffer);
  if (!n || !checking_ || *n == 0) return n;
  hasher_.Update(buffer.first(*n));
  read_ += static_cast<std::int64_t>(*n);
  if (read_ < size_) return n;
  checking_ = false;
  if (read_ > size_ || hasher_.FinishHex() != sha256_)
    return Fail(ErrorCode::kCorrupted,
                "the stored bytes do not match their SHA-256 " + sha256_ + " (altered on storage)");
  if (on_verified_) on_verified_();
  return n;
}

Result<void> VerifyingReader::Seek(std::int64_t offset) {
  if (offset == 0) return {};
  checking_ = false;
  return raw_->Seek(offset);
}

// Unchecked bytes (a range) may bypass Read; a whole blob is hashed, so it may not.
std::optional<FileRegion> VerifyingReader::Region() {
  if (checking_) return std::nullopt;
  return raw_->Region();
}

}  // namespace dlipkg
