#include "core/blob_keeper.hpp"

#include <algorithm>
#include <set>

namespace dlipkg {

BlobKeeper::BlobKeeper(MetadataStore& metadata, BlobStore& blobs, const Clock& clock,
                       EventSink& events, std::string owner, std::chrono::milliseconds pin_ttl,
                       PinScope scope)
    : metadata_(metadata),
      blobs_(blobs),
      clock_(clock),
      events_(events),
      owner_(std::move(owner)),
      pin_ttl_(pin_ttl),
      scope_(scope) {}

std::mutex& BlobKeeper::StripeOf(const std::string& sha) {
  return stripes_[std::hash<std::string>{}(sha) % kStripes];
}

std::string BlobKeeper::StartHold(const std::string& sha) {
  std::lock_guard stripe(StripeOf(sha));
  std::lock_guard lock(mutex_);
  std::string pin_id = owner_ + "/" + std::to_string(++next_pin_);
  held_.emplace(sha, pin_id);
  return pin_id;
}

void BlobKeeper::DropHold(const HeldBlob& held) {
  std::lock_guard lock(mutex_);
  auto [first, last] = held_.equal_range(held.sha256);
  for (auto it = first; it != last; ++it) {
    if (it->second == held.pin_id) {
      held_.erase(it);
      return;
    }
  }
}

bool BlobKeeper::IsHeld(const std::string& sha) {
  std::lock_guard lock(mutex_);
  return held_.contains(sha);
}

Result<void> BlobKeeper::PinAndCheck(const HeldBlob& held) {
  if (scope_ == PinScope::kShared) {
    auto pinned = metadata_.PinBlob(held.sha256, held.pin_id, clock_.NowMs() + pin_ttl_.count());
    if (!pinned) return pinned;
  }
  auto exists = blobs_.Exists(held.sha256);
  if (!exists) return std::unexpected(exists.error());
  if (!*exists)
    return Fail(ErrorCode::kInternal,
                "The stored bytes were reclaimed by a concurrent delete; retry the upload.",
                /*retryable=*/true);
  return {};
}

Result<BlobInfo> BlobKeeper::CommitPinned(BlobWriter& writer, HeldBlob* held) {
  std::vector<HeldBlob> holds;
  BlobWriter* const writers[] = {&writer};
  auto committed = std::move(CommitPinnedAll(writers, holds).front());
  if (committed && held != nullptr) *held = holds.front();
  return committed;
}

// The fsyncs of bytes that no one else can see yet need no lock; uploads would otherwise wait
// for each other's disk writes here. The hold comes before the bytes are published: a reclaim
// of an existing copy (a delete of the last package with the same bytes) either finished
// before it, and Publish then finds no copy and writes these bytes, or it sees the hold and
// keeps the copy. Across instances the store pin does the same (ReclaimBlob checks pins under
// the blob's lock). So an upload holding the bytes never fails for want of them (issue 15).
std::vector<Result<BlobInfo>> BlobKeeper::CommitPinnedAll(std::span<BlobWriter* const> writers,
                                                          std::vector<HeldBlob>& held) {
  std::vector<Result<BlobInfo>> results(writers.size());
  held.assign(writers.size(), HeldBlob{});
  const auto going = [&](std::size_t i) { return results[i].has_value(); };
  for (std::size_t i = 0; i < writers.size(); ++i) {
    if (auto begun = writers[i]->BeginSeal(); !begun) results[i] = std::unexpected(begun.error());
  }
  for (std::size_t i = 0; i < writers.size(); ++i) {
    if (going(i)) results[i] = writers[i]->Seal();
  }
  for (std::size_t i = 0; i < writers.size(); ++i) {
    if (!going(i)) continue;
    const HeldBlob hold{results[i]->sha256, StartHold(results[i]->sha256)};
    if (scope_ == PinScope::kShared) {
      if (auto pinned =
              metadata_.PinBlob(hold.sha256, hold.pin_id, clock_.NowMs() + pin_ttl_.count());
          !pinned) {
        Unpin({hold});
        results[i] = std::unexpected(pinned.error());
        continue;
      }
    }
    results[i] = writers[i]->Publish();
    if (!going(i)) Unpin({hold});
    if (going(i)) held[i] = hold;
  }
  // Only now are the names made durable: the first directory sync commits the renames of the
  // whole batch, and the others find little left to do.
  for (std::size_t i = 0; i < writers.size(); ++i) {
    if (!going(i)) continue;
    if (auto synced = writers[i]->SyncPublished(); !synced) {
      Unpin({held[i]});
      held[i] = HeldBlob{};
      results[i] = std::unexpected(synced.error());
    }
  }
  return results;
}

Result<std::vector<HeldBlob>> BlobKeeper::Hold(const std::vector<std::string>& shas) {
  std::vector<HeldBlob> held;
  for (const auto& sha : shas) {
    held.push_back(HeldBlob{sha, StartHold(sha)});
    auto pinned = PinAndCheck(held.back());
    if (!pinned) {
      Unpin(held);
      if (pinned.error().retryable)
        return Fail(ErrorCode::kBadRequest, "The blob " + sha +
                                                " is not stored: stage it with PUT "
                                                ".../blobs/{sha256} first.");
      return std::unexpected(pinned.error());
    }
  }
  return held;
}

Result<void> BlobKeeper::PinStaged(const std::string& sha, std::int64_t until_ms) {
  if (auto pinned = metadata_.PinBlob(sha, "staged", until_ms); !pinned) return pinned;
  auto exists = blobs_.Exists(sha);
  if (!exists) return std::unexpected(exists.error());
  if (!*exists) return Fail(ErrorCode::kNotFound, "The blob " + sha + " is not stored.");
  return {};
}

BlobCheck BlobKeeper::CheckFor(const std::vector<HeldBlob>& held) {
  BlobCheck check;
  if (scope_ != PinScope::kShared) return check;  // held in memory until Committed
  for (const auto& h : held) check.pins.push_back({h.sha256, h.pin_id});
  check.now_ms = clock_.NowMs();
  check.exists = [this](const std::string& sha) { return blobs_.Exists(sha); };
  return check;
}

void BlobKeeper::Committed(const std::vector<HeldBlob>& held) {
  for (const auto& h : held) DropHold(h);
}

void BlobKeeper::Unpin(const std::vector<HeldBlob>& held) {
  for (const auto& h : held) {
    DropHold(h);
    if (scope_ != PinScope::kShared) continue;
    if (auto unpinned = metadata_.UnpinBlob(h.sha256, h.pin_id); !unpinned)
      events_.Report({.kind = EventKind::kStoreError,
                      .operation = "unpin blob",
                      .sha256 = h.sha256,
                      .cause = unpinned.error().message});
  }
}

std::size_t BlobKeeper::Reclaim(const std::vector<std::string>& shas) {
  std::size_t removed = 0;
  for (const auto& sha : std::set<std::string>(shas.begin(), shas.end())) {
    if (sha.empty()) continue;
    std::unique_lock stripe(StripeOf(sha));
    if (IsHeld(sha)) {
      stripe.unlock();
      // An upload here holds the bytes: it commits a reference to them, or fails and reclaims
      // them itself. The row makes sure a later round looks again either way.
      if (auto queued = metadata_.QueueReclaims({sha}); !queued)
        events_.Report({.kind = EventKind::kStoreError,
                        .operation = "queue reclaim",
                        .sha256 = sha,
                        .cause = queued.error().message});
      continue;
    }
    auto reclaimed = metadata_.ReclaimBlob(sha, clock_.NowMs(), [&] { return blobs_.Remove(sha); });
    stripe.unlock();
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
  for (const auto& item : *due) {
    const std::string& sha = item.sha256;
    std::unique_lock stripe(StripeOf(sha));
    // Held by an upload here: as pinned, it waits (reclaimed = false).
    auto reclaimed = IsHeld(sha) ? Result<bool>(false)
                                 : metadata_.ReclaimBlob(sha, clock_.NowMs(),
                                                         [&] { return blobs_.Remove(sha); });
    stripe.unlock();
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
