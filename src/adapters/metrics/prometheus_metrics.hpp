// The service's Prometheus metrics (prometheus-cpp's core library only: the text is served by
// our own HTTP server through GET /metrics, not by prometheus-cpp's civetweb exposer).
// It is both the Metrics port (requests, presign refusals, sync uploads, queue depth) and an
// EventSink (the core's job and store events become counters). The fetcher and blob-store
// decorators beside it count bytes fetched, fetch failures and blob-store errors into it.
// Thread-safe: prometheus-cpp's metrics are, and the label caches take their own lock.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "ports/event_sink.hpp"
#include "ports/metrics.hpp"

namespace dlipkg {

class PrometheusMetrics final : public Metrics, public EventSink {
 public:
  explicit PrometheusMetrics(std::string version);
  ~PrometheusMetrics() override;

  void ObserveRequest(const RequestSample& sample) override;
  void CountPresignRefusal(std::string_view reason) override;
  void CountUploads(std::string_view mode, bool ok, std::int64_t packages) override;
  void SetQueuedJobs(std::int64_t jobs) override;
  std::string Render() override;

  void Report(const Event& event) override;

  // For the decorators (counting_fetcher.hpp, counting_blob_store.hpp) and the SQL store's
  // error hook. `failure_class` and `operation` are fixed words.
  void AddFetchedBytes(std::int64_t bytes);
  void CountFetchFailure(std::string_view failure_class);
  void CountStoreError(std::string_view store, std::string_view operation);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dlipkg
