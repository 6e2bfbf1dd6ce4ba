// Where the core reports what happens to packages and jobs that no caller waits for: an async
// job queued, started, retried, failed or finished; a store call whose failure the core can only
// note (a lease renewal, a reclaim, an unpin). The composition root plugs in adapters that write
// a log line and count the event for /metrics. Report never blocks long and never fails;
// implementations must be thread-safe (jobs run on many workers at once).
#pragma once

#include <cstdint>
#include <string>

namespace dlipkg {

enum class EventKind {
  kJobQueued,      // an async upload's job was queued
  kJobStarted,     // a worker claimed the job and began fetching (attempt set)
  kJobRetrying,    // a retryable failure; the job is due again after delay_ms (cause set)
  kJobFailed,      // the package is FAILED (cause set)
  kJobReady,       // the package is READY (bytes, duration_ms set)
  kStoreError,     // a store call failed where nobody can be answered (cause, operation set)
  kBlobReclaimed,  // unreferenced bytes were removed (sha256 set)
  kCollected,      // the periodic collector removed `count` things (operation says what)
};

struct Event {
  EventKind kind = EventKind::kStoreError;
  std::string operation;  // what was being done ("renew lease", "reclaim blob", ...)
  std::int64_t job_id = 0;
  std::string project;
  std::string group;  // "" for ungrouped
  std::string name;   // the package
  std::string sha256;
  int attempt = 0;
  std::int64_t delay_ms = 0;
  std::int64_t bytes = 0;
  std::int64_t duration_ms = 0;
  std::int64_t count = 0;
  std::string cause;  // client-safe message: no secret, no server path
};

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void Report(const Event& event) = 0;
};

// Drops every event: for tests and tools that do not watch.
class NullEventSink final : public EventSink {
 public:
  void Report(const Event&) override {}
};

}  // namespace dlipkg
