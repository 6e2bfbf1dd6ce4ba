// The periodic collector (issue 15, bug 5): drains the reclaim queue and, on one instance at a
// time (a lease in the metadata store), removes what crashed uploads left in the blob store:
// temporaries and unfinished multipart uploads older than the grace period, blobs that no
// package refers to and that were first seen so at least a grace period ago (recorded in the
// store), and pins that ran out. Started by the composition root; waits on the injected Clock.
// Thread-safe: RunOnce may be called from any thread, also while the loop runs.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <thread>

#include "core/blob_keeper.hpp"
#include "domain/error.hpp"
#include "ports/blob_store.hpp"
#include "ports/clock.hpp"
#include "ports/event_sink.hpp"
#include "ports/metadata_store.hpp"

namespace dlipkg {

struct CollectorOptions {
  std::string owner;                              // unique per instance (the worker id)
  std::chrono::milliseconds interval{3'600'000};  // between two passes
  std::chrono::milliseconds grace{86'400'000};    // bug 5's grace period, and temporaries'
  std::size_t drain_batch = 500;                  // reclaim-queue rows per round
  std::size_t max_drain_rounds = 20;              // rounds per pass: the rest waits
};

// What one pass did.
struct CollectionReport {
  bool led = false;           // this instance held the lease and collected
  std::size_t reclaimed = 0;  // blobs removed from the reclaim queue
  std::size_t deferred = 0;   // reclaim-queue removals that failed (retried later)
  std::size_t temporaries = 0;
  std::size_t blobs = 0;  // unreferenced blobs past the grace period
  std::size_t pins = 0;   // expired pins dropped
};

class Collector {
 public:
  Collector(MetadataStore& metadata, BlobStore& blobs, BlobKeeper& keeper, const Clock& clock,
            EventSink& events, CollectorOptions options);
  ~Collector();  // Stop()
  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;

  // One pass. Errors: the first store failure (the pass stops there; the next one retries).
  Result<CollectionReport> RunOnce();
  // Runs a pass every interval on a thread of its own (the first one interval after Start);
  // Stop ends it (waiting for a pass in progress) and releases the lease.
  void Start();
  void Stop();

 private:
  Result<void> Lead(CollectionReport& report);
  void Report(std::string_view what, std::size_t count);
  void Loop();

  MetadataStore& metadata_;
  BlobStore& blobs_;
  BlobKeeper& keeper_;
  const Clock& clock_;
  EventSink& events_;
  const CollectorOptions options_;
  std::mutex run_mutex_;  // one pass at a time in this process
  std::mutex mutex_;      // guards stop_
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace dlipkg
