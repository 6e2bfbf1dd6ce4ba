// What the HTTP and API layers count for /metrics (the core reports its own happenings through
// EventSink), and the text a scrape returns. The composition root plugs in the Prometheus
// adapter (adapters/metrics); tests and tools use NullMetrics. Every call is quick (no I/O, no
// store query: a scrape must not load the stores) and thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace dlipkg {

// One answered request. Labels come from a bounded set, so that series do not grow with
// what clients send: `route` is a route table pattern, "unmatched" or "rejected".
struct RequestSample {
  std::string_view route;
  std::string_view method;
  int status = 0;
  double seconds = 0;
  std::uint64_t bytes_sent = 0;  // response body bytes written
};

class Metrics {
 public:
  virtual ~Metrics() = default;
  virtual void ObserveRequest(const RequestSample& sample) = 0;
  // A presigned URL refused; `reason` is one of a few fixed words ("expired", "signature",
  // "malformed", ...). For the download routes.
  virtual void CountPresignRefusal(std::string_view reason) = 0;
  // Packages of an upload request the client waits for: stored (`ok`) or not. `mode` is "sync"
  // (fetched from sources) or "direct" (the request's own bytes); async jobs are counted from
  // the core's events.
  virtual void CountUploads(std::string_view mode, bool ok, std::int64_t packages) = 0;
  // Jobs in the queue (every instance's), sampled in the background.
  virtual void SetQueuedJobs(std::int64_t jobs) = 0;
  // Every metric in the Prometheus text exposition format 0.0.4.
  virtual std::string Render() = 0;
};

// Counts nothing: for tests and tools that do not watch.
class NullMetrics final : public Metrics {
 public:
  void ObserveRequest(const RequestSample&) override {}
  void CountPresignRefusal(std::string_view) override {}
  void CountUploads(std::string_view, bool, std::int64_t) override {}
  void SetQueuedJobs(std::int64_t) override {}
  std::string Render() override { return ""; }
};

}  // namespace dlipkg
