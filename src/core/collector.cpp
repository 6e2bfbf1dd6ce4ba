#include "core/collector.hpp"

#include <algorithm>

namespace dlipkg {

Collector::Collector(MetadataStore& metadata, BlobStore& blobs, BlobKeeper& keeper,
                     const Clock& clock, EventSink& events, CollectorOptions options)
    : metadata_(metadata),
      blobs_(blobs),
      keeper_(keeper),
      clock_(clock),
      events_(events),
      options_(std::move(options)) {}

Collector::~Collector() { Stop(); }

void Collector::Report(std::string_view what, std::size_t count) {
  if (count == 0) return;
  events_.Report({.kind = EventKind::kCollected,
                  .operation = std::string(what),
                  .count = static_cast<std::int64_t>(count)});
}

Result<CollectionReport> Collector::RunOnce() {
  std::lock_guard running(run_mutex_);
  CollectionReport report;
  // Every instance drains the queue: each row is re-checked under its blob's lock, so two
  // instances at once only repeat a removal of bytes already gone.
  for (std::size_t round = 0; round < options_.max_drain_rounds; ++round) {
    auto drained = keeper_.DrainQueue(options_.drain_batch, options_.interval);
    if (!drained) return std::unexpected(drained.error());
    report.reclaimed += drained->removed;
    report.deferred += drained->failed;
    if (drained->due < options_.drain_batch) break;
  }
  // The lease outlasts the pass's interval, so a holder that keeps running keeps it, and
  // another instance takes over two intervals after the holder died.
  const std::int64_t now = clock_.NowMs();
  auto led = metadata_.TakeCollectorLease(options_.owner, now, now + 2 * options_.interval.count());
  if (!led) return std::unexpected(led.error());
  report.led = *led;
  if (!report.led) return report;
  if (auto done = Lead(report); !done) return std::unexpected(done.error());
  return report;
}

Result<void> Collector::Lead(CollectionReport& report) {
  auto temporaries = blobs_.SweepTemporaries(options_.grace);
  if (!temporaries) return std::unexpected(temporaries.error());
  report.temporaries = *temporaries;
  Report("temporaries", report.temporaries);
  // Pins first: a blob whose uploader died is then unpinned, and its grace starts.
  auto pins = metadata_.DropExpiredPins(clock_.NowMs());
  if (!pins) return std::unexpected(pins.error());
  report.pins = *pins;
  Report("pins", report.pins);
  auto blobs = keeper_.CollectAbandoned(options_.grace);
  if (!blobs) return std::unexpected(blobs.error());
  report.blobs = blobs->size();
  Report("blobs", report.blobs);
  return {};
}

void Collector::Start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void Collector::Stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Another instance may collect at once rather than after the lease runs out. Best effort.
  (void)metadata_.ReleaseCollectorLease(options_.owner);
}

void Collector::Loop() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      const std::int64_t next = clock_.MonotonicMs() + options_.interval.count();
      if (clock_.WaitUntil(lock, wake_, next, [this] { return stop_; })) return;
    }
    auto ran = RunOnce();
    if (!ran)
      events_.Report({.kind = EventKind::kStoreError,
                      .operation = "collect",
                      .cause = ran.error().message + " (retried at the next interval)"});
  }
}

}  // namespace dlipkg
