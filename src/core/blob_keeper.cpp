#include "core/blob_keeper.hpp"

#include <set>

namespace dlipkg {

BlobKeeper::BlobKeeper(MetadataStore& metadata, BlobStore& blobs, const Clock& clock,
                       EventSink& events, std::string owner, std::chrono::milliseconds pin_ttl)
    : metadata_(metadata),
      blobs_(blobs),
      clock_(clock),
      events_(events),
      owner_(std::move(owner)),
      pin_ttl_(pin_ttl) {}

Result<void> BlobKeeper::PinAndCheck(const std::string& sha, const std::string& pin_id) {
  if (auto pinned = metadata_.PinBlob(sha, pin_id, clock_.NowMs() + pin_ttl_.count()); !pinned)
    return pinned;
  auto exists = blobs_.Exists(sha);
  if (!exists) return std::unexpected(exists.error());
  if (!*exists)
    return Fail(ErrorCode::kInternal,
                "The stored bytes were reclaimed by a concurrent delete; retry the upload.",
                /*retryable=*/true);
  return {};
}

Result<BlobInfo> BlobKeeper::CommitPinned(BlobWriter& writer) {
  // The fsync of bytes that no one else can see yet needs no lock; uploads would otherwise
  // wait for each other's disk writes here.
  if (auto sealed = writer.Seal(); !sealed) return std::unexpected(sealed.error());
  std::string pin_id;
  Result<void> pinned;
  Result<BlobInfo> blob;
  {
    // Within this process, commit-and-pin and reclaim never interleave, so uploads of equal
    // bytes here never lose them to each other; the store's pins cover other instances.
    std::lock_guard publishing(publish_mutex_);
    blob = writer.Commit();
    if (!blob) return blob;
    {
      std::lock_guard lock(mutex_);
      pin_id = owner_ + "/" + std::to_string(++next_pin_);
      held_.emplace(blob->sha256, pin_id);
    }
    pinned = PinAndCheck(blob->sha256, pin_id);
  }
  if (!pinned) {
    Unpin({blob->sha256});
    return std::unexpected(pinned.error());
  }
  return blob;
}

Result<void> BlobKeeper::Hold(const std::vector<std::string>& shas) {
  std::vector<std::string> held;
  for (const auto& sha : shas) {
    std::string pin_id;
    {
      std::lock_guard lock(mutex_);
      pin_id = owner_ + "/" + std::to_string(++next_pin_);
      held_.emplace(sha, pin_id);
    }
    held.push_back(sha);
    auto pinned = PinAndCheck(sha, pin_id);
    if (!pinned) {
      Unpin(held);
      if (pinned.error().retryable)
        return Fail(ErrorCode::kBadRequest, "The blob " + sha +
                                                " is not stored: stage it with PUT "
                                                ".../blobs/{sha256} first.");
      return pinned;
    }
  }
  return {};
}

Result<void> BlobKeeper::PinStaged(const std::string& sha, std::int64_t until_ms) {
  if (auto pinned = metadata_.PinBlob(sha, "staged", until_ms); !pinned) return pinned;
  auto exists = blobs_.Exists(sha);
  if (!exists) return std::unexpected(exists.error());
  if (!*exists) return Fail(ErrorCode::kNotFound, "The blob " + sha + " is not stored.");
  return {};
}

std::optional<std::string> BlobKeeper::HeldPin(const std::string& sha, bool release) {
  std::lock_guard lock(mutex_);
  auto it = held_.find(sha);
  if (it == held_.end()) return std::nullopt;
  std::string pin_id = it->second;
  if (release) held_.erase(it);
  return pin_id;
}

Result<void> BlobKeeper::Confirm(const std::vector<std::string>& shas) {
  for (const auto& sha : shas) {
    const auto pin_id = HeldPin(sha, /*release=*/false);
    if (!pin_id) continue;
    if (auto ok = PinAndCheck(sha, *pin_id); !ok) return ok;
  }
  return {};
}

void BlobKeeper::Unpin(const std::vector<std::string>& shas) {
  for (const auto& sha : shas) {
    const auto pin_id = HeldPin(sha, /*release=*/true);
    if (!pin_id) continue;
    if (auto unpinned = metadata_.UnpinBlob(sha, *pin_id); !unpinned)
      events_.Report({.kind = EventKind::kStoreError,
                      .operation = "unpin blob",
                      .sha256 = sha,
                      .cause = unpinned.error().message});
  }
}

void BlobKeeper::Reclaim(const std::vector<std::string>& shas) {
  std::lock_guard publishing(publish_mutex_);
  for (const auto& sha : std::set<std::string>(shas.begin(), shas.end())) {
    if (sha.empty()) continue;
    auto reclaimed = metadata_.ReclaimBlob(sha, clock_.NowMs(), [&] { return blobs_.Remove(sha); });
    if (!reclaimed)
      events_.Report({.kind = EventKind::kStoreError,
                      .operation = "reclaim blob",
                      .sha256 = sha,
                      .cause = reclaimed.error().message});
    else if (*reclaimed)
      events_.Report({.kind = EventKind::kBlobReclaimed, .sha256 = sha});
  }
}

}  // namespace dlipkg
