#include "core/blob_keeper.hpp"

#include <algorithm>
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
  auto sealed = writer.Seal();
  if (!sealed) return sealed;
  std::string pin_id;
  {
    std::lock_guard lock(mutex_);
    pin_id = owner_ + "/" + std::to_string(++next_pin_);
    held_.emplace(sealed->sha256, pin_id);
  }
  Result<BlobInfo> blob;
  {
    // Within this process, commit-and-pin and reclaim never interleave, so uploads of equal
    // bytes here never lose them to each other. Across instances the pin comes first: a
    // reclaim of an existing copy (another instance deleting its last package) either
    // finished before the pin, and Commit then finds no copy and writes these bytes, or it
    // sees the pin and keeps the copy. So an upload holding the bytes never fails for want of
    // them (issue 15).
    std::lock_guard publishing(publish_mutex_);
    auto pinned = metadata_.PinBlob(sealed->sha256, pin_id, clock_.NowMs() + pin_ttl_.count());
    blob = pinned ? writer.Commit() : Result<BlobInfo>(std::unexpected(pinned.error()));
  }
  if (!blob) {
    Unpin({sealed->sha256});
    return blob;
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

std::size_t BlobKeeper::Reclaim(const std::vector<std::string>& shas) {
  std::size_t removed = 0;
  std::lock_guard publishing(publish_mutex_);
  for (const auto& sha : std::set<std::string>(shas.begin(), shas.end())) {
    if (sha.empty()) continue;
    auto reclaimed = metadata_.ReclaimBlob(sha, clock_.NowMs(), [&] { return blobs_.Remove(sha); });
    if (reclaimed) {
      if (*reclaimed) ++removed, events_.Report({.kind = EventKind::kBlobReclaimed, .sha256 = sha});
      continue;
    }
    // Not forgotten: the queue keeps it until a later attempt removes the bytes (a delete
    // queued it already, in its own transaction; this covers new bytes a failed upload left).
    events_.Report({.kind = EventKind::kStoreError,
                    .operation = "reclaim blob",
                    .sha256 = sha,
                    .cause = reclaimed.error().message + " (queued for a later attempt)"});
    if (auto queued = metadata_.QueueReclaims({sha}); !queued)
      events_.Report({.kind = EventKind::kStoreError,
                      .operation = "queue reclaim",
                      .sha256 = sha,
                      .cause = queued.error().message});
  }
  return removed;
}

Result<ReclaimRound> BlobKeeper::DrainQueue(std::size_t limit,
                                            std::chrono::milliseconds max_delay) {
  auto due = metadata_.DueReclaims(clock_.NowMs(), limit);
  if (!due) return std::unexpected(due.error());
  ReclaimRound round{.due = due->size()};
  std::lock_guard publishing(publish_mutex_);
  for (const auto& item : *due) {
    const std::string& sha = item.sha256;
    auto reclaimed = metadata_.ReclaimBlob(sha, clock_.NowMs(), [&] { return blobs_.Remove(sha); });
    if (reclaimed && *reclaimed) {
      ++round.removed;
      events_.Report({.kind = EventKind::kBlobReclaimed, .sha256 = sha});
      continue;
    }
    // Referenced again: the row is gone and this changes nothing. Pinned, or the removal
    // failed: the row waits, longer after each failure, up to max_delay.
    const std::int64_t delay = std::min<std::int64_t>(
        max_delay.count(), std::int64_t{1000} << std::min<std::int64_t>(item.attempts, 20));
    if (!reclaimed) {
      ++round.failed;
      events_.Report({.kind = EventKind::kStoreError,
                      .operation = "reclaim blob",
                      .sha256 = sha,
                      .attempt = static_cast<int>(item.attempts + 1),
                      .cause = reclaimed.error().message + " (retried later)"});
    }
    if (auto deferred = metadata_.DeferReclaim(sha, clock_.NowMs() + delay); !deferred)
      return std::unexpected(deferred.error());
  }
  return round;
}

Result<std::vector<std::string>> BlobKeeper::CollectAbandoned(std::chrono::milliseconds grace) {
  auto stored = blobs_.List();
  if (!stored) return std::unexpected(stored.error());
  auto referenced = metadata_.ReferencedBlobs();
  if (!referenced) return std::unexpected(referenced.error());
  const std::set<std::string> keep(referenced->begin(), referenced->end());
  std::vector<std::string> candidates;
  for (auto& sha : *stored)
    if (!keep.contains(sha)) candidates.push_back(std::move(sha));
  auto abandoned = metadata_.AbandonedBlobs(candidates, clock_.NowMs(), grace.count());
  if (!abandoned) return std::unexpected(abandoned.error());
  std::vector<std::string> removed;
  for (const auto& sha : *abandoned)
    if (Reclaim({sha}) > 0) removed.push_back(sha);
  return removed;
}

}  // namespace dlipkg
