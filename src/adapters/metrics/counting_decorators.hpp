// Decorators that count into PrometheusMetrics what only the adapters see: bytes fetched from
// sources and fetch failures by class (around the SourceFetcher), and failed blob-store calls
// (around the BlobStore, its writers and readers). Behaviour is otherwise the wrapped object's.
// Thread-safe as the wrapped objects are; the metrics object must outlive them.
#pragma once

#include <memory>

#include "adapters/metrics/prometheus_metrics.hpp"
#include "ports/blob_store.hpp"
#include "ports/source_fetcher.hpp"

namespace dlipkg {

class CountingFetcher final : public SourceFetcher {
 public:
  CountingFetcher(SourceFetcher& inner, PrometheusMetrics& metrics)
      : inner_(inner), metrics_(metrics) {}
  Result<std::int64_t> Fetch(std::string_view url, ByteSink& sink) override;

 private:
  SourceFetcher& inner_;
  PrometheusMetrics& metrics_;
};

class CountingBlobStore final : public BlobStore {
 public:
  CountingBlobStore(BlobStore& inner, PrometheusMetrics& metrics)
      : inner_(inner), metrics_(metrics) {}
  Result<std::unique_ptr<BlobWriter>> Create() override;
  Result<std::unique_ptr<BlobReader>> Open(const std::string& sha256) override;
  Result<bool> Exists(const std::string& sha256) override;
  Result<void> Remove(const std::string& sha256) override;
  Result<std::vector<std::string>> List() override;
  Result<std::size_t> SweepTemporaries(std::chrono::milliseconds min_age) override;

 private:
  BlobStore& inner_;
  PrometheusMetrics& metrics_;
};

}  // namespace dlipkg
