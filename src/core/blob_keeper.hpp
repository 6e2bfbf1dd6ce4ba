// Decides when stored bytes may be reclaimed, safely across instances sharing the stores.
// Blobs are shared by content, so bytes an upload has just committed must not be removed by a
// concurrent delete of the last package that used the same bytes before the upload's metadata
// commit refers to them. CommitPinned pins the blob's hash in the metadata store before it
// commits the bytes, so another instance's reclaim either finished first (the commit then
// writes the bytes again) or sees the pin;
// Confirm renews the pins right before the metadata commit; Unpin drops them after it;
// Reclaim removes blobs no package refers to and no live pin holds (MetadataStore::ReclaimBlob);
// what it cannot remove stays in the store's reclaim queue, which DrainQueue retries.
// Failures nobody can be answered about (an unpin, a reclaim) and reclaimed bytes go to the
// EventSink. Used by the upload paths, deletes, the start-up sweep and the Collector.
// Thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
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

class BlobKeeper {
 public:
  // `owner` makes pin ids unique across instances (the process's worker id).
  BlobKeeper(MetadataStore& metadata, BlobStore& blobs, const Clock& clock, EventSink& events,
             std::string owner, std::chrono::milliseconds pin_ttl = std::chrono::minutes(30));

  // Seals the writer (outside any lock), then pins the hash and commits the bytes under the
  // lock that reclaims take too. Errors: those of BlobWriter::Seal and Commit or the store.
  Result<BlobInfo> CommitPinned(BlobWriter& writer);
  // Renews this process's pins of `shas` and checks the bytes are still there; call right
  // before the metadata commit that makes packages refer to them. Errors as CommitPinned.
  Result<void> Confirm(const std::vector<std::string>& shas);
  // Pins blobs that are already stored (a commit naming staged blobs), like CommitPinned does
  // for new ones; Unpin releases them. kBadRequest naming the first blob that is not stored.
  Result<void> Hold(const std::vector<std::string>& shas);
  // Keeps a staged blob from being reclaimed until `until_ms` under a pin every instance shares
  // (a later commit request may reach any of them). kNotFound when the bytes are not stored.
  Result<void> PinStaged(const std::string& sha, std::int64_t until_ms);
  // Drops one pin of each of `shas` taken by CommitPinned or Hold. A failure is reported as an
  // event: the pin then runs out by itself.
  void Unpin(const std::vector<std::string>& shas);
  // Removes the blobs no package refers to and nobody has pinned; returns how many it removed.
  // A failure is reported as an event and the blob is put in the metadata store's reclaim
  // queue (a delete or replacement queued it already), so DrainQueue retries it.
  std::size_t Reclaim(const std::vector<std::string>& shas);
  // One round over up to `limit` due rows of the reclaim queue: each blob is removed if still
  // unreferenced and unpinned (re-checked under the blob's lock); a failed removal, or a
  // pinned blob, is due again after a delay that doubles per failure, from 1 s up to
  // `max_delay`. Safe on many instances at once. Errors: the store's (reading the queue).
  Result<ReclaimRound> DrainQueue(std::size_t limit, std::chrono::milliseconds max_delay);
  // Removes the stored blobs that no package refers to, no pin holds, and that were first
  // seen so at least `grace` ago (MetadataStore::AbandonedBlobs); returns those removed.
  Result<std::vector<std::string>> CollectAbandoned(std::chrono::milliseconds grace);

 private:
  Result<void> PinAndCheck(const std::string& sha, const std::string& pin_id);
  // One of this process's pin ids for `sha`, forgotten when `release`; nullopt if none.
  std::optional<std::string> HeldPin(const std::string& sha, bool release);

  MetadataStore& metadata_;
  BlobStore& blobs_;
  const Clock& clock_;
  EventSink& events_;
  const std::string owner_;
  const std::chrono::milliseconds pin_ttl_;
  std::mutex publish_mutex_;  // held across commit-pin-check and across reclaim
  std::mutex mutex_;          // guards next_pin_ and held_
  std::uint64_t next_pin_ = 0;
  std::multimap<std::string, std::string> held_;  // sha256 -> pin ids this process holds
};

}  // namespace dlipkg
