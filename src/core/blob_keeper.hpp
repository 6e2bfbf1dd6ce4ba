// Decides when stored bytes may be reclaimed, safely across instances sharing the stores.
// Blobs are shared by content, so bytes an upload has just committed must not be removed by a
// concurrent delete of the last package that used the same bytes before the upload's metadata
// commit refers to them. CommitPinned holds the blob's hash in this process (and, when the
// metadata store is shared by other instances, pins it there) before it publishes the bytes,
// so a reclaim either finished first (the commit then writes the bytes again) or sees the
// hold. The metadata commit that refers to the bytes releases the store pins itself (CheckFor,
// BlobCheck), so it is the only write an upload makes; Committed then drops the holds, and
// Unpin drops holds and pins of an upload that did not commit. Reclaim removes blobs no package
// refers to and nothing holds (MetadataStore::ReclaimBlob); what it cannot remove, held ones
// included, stays in the store's reclaim queue, which DrainQueue retries.
// Failures nobody can be answered about (an unpin, a reclaim) and reclaimed bytes go to the
// EventSink. Used by the upload paths, deletes, the start-up sweep and the Collector.
// Thread-safe; no lock of it is held across an fsync, and none process-wide across a store call.
#pragma once

#include <array>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ports/blob_store.hpp"
#include "ports/clock.hpp"
#include "ports/event_sink.hpp"
#include "ports/metadata_store.hpp"

namespace dlipkg {

// What one DrainQueue round did.
struct ReclaimRound {
  std::size_t due = 0;      // rows that were due
  std::size_t removed = 0;  // blobs removed
  std::size_t failed = 0;   // removals that failed (rows deferred)
};

// One hold of a blob by one upload (CommitPinned, Hold): what its commit or Unpin releases.
struct HeldBlob {
  std::string sha256;
  std::string pin_id;
};

enum class PinScope {
  kProcess,  // the metadata store is this process's alone (SQLite): holds in memory suffice
  kShared,   // other instances share the stores (PostgreSQL): holds are pinned in the store too
};

class BlobKeeper {
 public:
  // `owner` makes pin ids unique across instances (the process's worker id).
  BlobKeeper(MetadataStore& metadata, BlobStore& blobs, const Clock& clock, EventSink& events,
             std::string owner, std::chrono::milliseconds pin_ttl = std::chrono::minutes(30),
             PinScope scope = PinScope::kShared);

  // Seals the writer (its fsync outside any lock), holds the hash, then commits the bytes.
  // Errors: those of BlobWriter::Seal and Commit or the store; nothing stays held then.
  Result<BlobInfo> CommitPinned(BlobWriter& writer, HeldBlob* held);
  // CommitPinned for several writers, sharing the waits for the disk: every writer's bytes
  // are started towards the disk before any seal waits, and every blob is published before
  // any name is made durable (BlobWriter's batch hooks). One result per writer, in order; a
  // writer that fails is spent and holds nothing, the others go on. held[i] is set for each
  // success; nothing may refer to a blob before its result is in.
  std::vector<Result<BlobInfo>> CommitPinnedAll(std::span<BlobWriter* const> writers,
                                                std::vector<HeldBlob>& held);
  // Holds blobs that are already stored (a commit naming staged blobs), as CommitPinned does
  // new ones. kBadRequest naming the first blob that is not stored; nothing stays held then.
  Result<std::vector<HeldBlob>> Hold(const std::vector<std::string>& shas);
  // Keeps a staged blob from being reclaimed until `until_ms` under a pin every instance shares
  // (a later commit request may reach any of them). kNotFound when the bytes are not stored.
  Result<void> PinStaged(const std::string& sha, std::int64_t until_ms);
  // The BlobCheck to give the metadata commit that makes packages refer to `held`: it releases
  // their store pins in its own transaction. Empty (no pins) when holds are in memory only.
  BlobCheck CheckFor(const std::vector<HeldBlob>& held);
  // After a commit given CheckFor(held) succeeded: drops the holds.
  void Committed(const std::vector<HeldBlob>& held);
  // Drops the holds and their store pins (no commit referred to them). A failure is reported
  // as an event: the pin then runs out by itself.
  void Unpin(const std::vector<HeldBlob>& held);
  // Removes the blobs no package refers to and nothing holds; returns how many it removed.
  // A blob it cannot remove (held by an upload here, or the removal failed) is put in the
  // metadata store's reclaim queue (a delete or replacement queued it already), so DrainQueue
  // retries it, after that upload failed too.
  std::size_t Reclaim(const std::vector<std::string>& shas);
  // One round over up to `limit` due rows of the reclaim queue: each blob is removed if still
  // unreferenced and not held (re-checked under the blob's lock); a failed removal, or a
  // held blob, is due again after a delay that doubles per failure, from 1 s up to
  // `max_delay`. Safe on many instances at once. Errors: the store's (reading the queue).
  Result<ReclaimRound> DrainQueue(std::size_t limit, std::chrono::milliseconds max_delay);
  // Removes the stored blobs that no package refers to, nothing holds, and that were first
  // seen so at least `grace` ago (MetadataStore::AbandonedBlobs); returns those removed.
  Result<std::vector<std::string>> CollectAbandoned(std::chrono::milliseconds grace);

 private:
  static constexpr std::size_t kStripes = 64;
  // Taken by a hold as it starts and by a reclaim across its check and removal, so that the
  // two never interleave for one blob (other blobs go on: it is not process-wide).
  std::mutex& StripeOf(const std::string& sha);
  // Starts a hold of `sha` (a reclaim here either finished or sees it); its pin id.
  std::string StartHold(const std::string& sha);
  void DropHold(const HeldBlob& held);
  bool IsHeld(const std::string& sha);
  // Pins `held` in the store (shared scope) and checks the bytes are stored.
  Result<void> PinAndCheck(const HeldBlob& held);

  MetadataStore& metadata_;
  BlobStore& blobs_;
  const Clock& clock_;
  EventSink& events_;
  const std::string owner_;
  const std::chrono::milliseconds pin_ttl_;
  const PinScope scope_;
  std::array<std::mutex, kStripes> stripes_;
  std::mutex mutex_;  // guards next_pin_ and held_
  std::uint64_t next_pin_ = 0;
  std::multimap<std::string, std::string> held_;  // sha256 -> pin ids this process holds
};

}  // namespace dlipkg
