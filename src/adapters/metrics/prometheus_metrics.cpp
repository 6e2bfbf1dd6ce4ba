#include "adapters/metrics/prometheus_metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <array>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

namespace dlipkg {
namespace {

namespace prom = prometheus;

// Request durations from a fast cached show (~100 us) to a long synchronous upload.
const prom::Histogram::BucketBoundaries kDurationBuckets{
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};

// Methods outside this set are counted as "other", so a client cannot grow the series.
std::string_view KnownMethod(std::string_view method) {
  static constexpr std::array<std::string_view, 7> kKnown{"GET",    "HEAD",  "POST",   "PUT",
                                                          "DELETE", "PATCH", "OPTIONS"};
  for (auto known : kKnown)
    if (method == known) return known;
  return "other";
}

std::string_view EventName(EventKind kind) {
  switch (kind) {
    case EventKind::kJobQueued:
      return "queued";
    case EventKind::kJobStarted:
      return "started";
    case EventKind::kJobRetrying:
      return "retrying";
    case EventKind::kJobFailed:
      return "failed";
    case EventKind::kJobReady:
      return "ready";
    default:
      return "";
  }
}

}  // namespace

struct PrometheusMetrics::Impl {
  explicit Impl(const std::string& version)
      : registry(std::make_shared<prom::Registry>()),
        requests(prom::BuildCounter()
                     .Name("dlipkg_http_requests_total")
                     .Help("HTTP requests answered, by route pattern, method and status")
                     .Register(*registry)),
        durations(prom::BuildHistogram()
                      .Name("dlipkg_http_request_duration_seconds")
                      .Help("Time from a request's first byte to the end of its answer, by route")
                      .Register(*registry)),
        served(prom::BuildCounter()
                   .Name("dlipkg_served_bytes_total")
                   .Help("Response body bytes sent (package downloads and JSON answers)")
                   .Register(*registry)
                   .Add({})),
        fetched(prom::BuildCounter()
                    .Name("dlipkg_fetched_bytes_total")
                    .Help("Bytes fetched from package sources (sync and async uploads)")
                    .Register(*registry)
                    .Add({})),
        fetch_failures(prom::BuildCounter()
                           .Name("dlipkg_fetch_failures_total")
                           .Help("Source fetches that failed, by class: refused (policy or bad "
                                 "URL), transient (retryable), permanent, store (writing the "
                                 "bytes failed)")
                           .Register(*registry)),
        uploads(
            prom::BuildCounter()
                .Name("dlipkg_uploads_total")
                .Help("Packages uploaded, by mode (sync: fetched while the client waits; async: "
                      "by a job; direct: the request's own bytes) and outcome (ready, failed)")
                .Register(*registry)),
        jobs(prom::BuildCounter()
                 .Name("dlipkg_jobs_total")
                 .Help("Async job events, by state reached: queued, started, retrying, failed, "
                       "ready")
                 .Register(*registry)),
        retries(prom::BuildCounter()
                    .Name("dlipkg_job_retries_total")
                    .Help("Async job attempts that failed and were scheduled again")
                    .Register(*registry)
                    .Add({})),
        queued(prom::BuildGauge()
                   .Name("dlipkg_jobs_queued")
                   .Help("Async jobs waiting or running in the queue (all instances), sampled "
                         "in the background")
                   .Register(*registry)
                   .Add({})),
        store_errors(prom::BuildCounter()
                         .Name("dlipkg_store_errors_total")
                         .Help("Failed calls to the metadata or blob store, by store and "
                               "operation")
                         .Register(*registry)),
        presign_refusals(prom::BuildCounter()
                             .Name("dlipkg_presign_refusals_total")
                             .Help("Presigned URLs refused, by reason")
                             .Register(*registry)),
        reclaimed(prom::BuildCounter()
                      .Name("dlipkg_blobs_reclaimed_total")
                      .Help("Stored blobs removed because no package refers to them any more")
                      .Register(*registry)
                      .Add({})),
        collected(prom::BuildCounter()
                      .Name("dlipkg_collector_removed_total")
                      .Help("What the periodic collector removed, by kind: temporaries "
                            "(temporary objects and unfinished multipart uploads), blobs "
                            "(unreferenced past the grace period), pins (run out)")
                      .Register(*registry)) {
    prom::BuildGauge()
        .Name("dlipkg_build_info")
        .Help("The running version (always 1)")
        .Register(*registry)
        .Add({{"version", version}})
        .Set(1);
    // Series known in advance exist from the start, so a rate() sees their first increase.
    for (auto state : {"queued", "started", "retrying", "failed", "ready"})
      jobs.Add({{"state", state}});
    for (auto mode : {"sync", "async", "direct"})
      for (auto outcome : {"ready", "failed"}) uploads.Add({{"mode", mode}, {"outcome", outcome}});
    for (auto name : {"refused", "transient", "permanent", "store"})
      fetch_failures.Add({{"class", name}});
    for (auto reason : {"malformed", "expired", "signature", "error"})
      presign_refusals.Add({{"reason", reason}});
    for (auto what : {"temporaries", "blobs", "pins"}) collected.Add({{"what", what}});
  }

  // The counter and histogram of one (route, method, status), looked up without building
  // label maps on the hot path once the combination has been seen.
  struct RequestSeries {
    prom::Counter* count;
    prom::Histogram* duration;
  };
  RequestSeries Series(const RequestSample& sample) {
    std::string key;
    key.reserve(sample.route.size() + 16);
    key.append(sample.route).append(" ").append(KnownMethod(sample.method)).append(" ");
    key.append(std::to_string(sample.status));
    {
      std::shared_lock lock(mutex);
      if (auto it = series.find(key); it != series.end()) return it->second;
    }
    const std::string route(sample.route);
    const std::string method(KnownMethod(sample.method));
    RequestSeries made{
        &requests.Add(
            {{"route", route}, {"method", method}, {"status", std::to_string(sample.status)}}),
        &durations.Add({{"route", route}}, kDurationBuckets)};
    std::unique_lock lock(mutex);
    return series.try_emplace(std::move(key), made).first->second;
  }

  std::shared_ptr<prom::Registry> registry;
  prom::Family<prom::Counter>& requests;
  prom::Family<prom::Histogram>& durations;
  prom::Counter& served;
  prom::Counter& fetched;
  prom::Family<prom::Counter>& fetch_failures;
  prom::Family<prom::Counter>& uploads;
  prom::Family<prom::Counter>& jobs;
  prom::Counter& retries;
  prom::Gauge& queued;
  prom::Family<prom::Counter>& store_errors;
  prom::Family<prom::Counter>& presign_refusals;
  prom::Counter& reclaimed;
  prom::Family<prom::Counter>& collected;

  std::shared_mutex mutex;
  std::unordered_map<std::string, RequestSeries> series;
};

PrometheusMetrics::PrometheusMetrics(std::string version)
    : impl_(std::make_unique<Impl>(version)) {}

PrometheusMetrics::~PrometheusMetrics() = default;

void PrometheusMetrics::ObserveRequest(const RequestSample& sample) {
  const auto series = impl_->Series(sample);
  series.count->Increment();
  series.duration->Observe(sample.seconds);
  if (sample.bytes_sent > 0) impl_->served.Increment(static_cast<double>(sample.bytes_sent));
}

void PrometheusMetrics::CountPresignRefusal(std::string_view reason) {
  impl_->presign_refusals.Add({{"reason", std::string(reason)}}).Increment();
}

void PrometheusMetrics::CountUploads(std::string_view mode, bool ok, std::int64_t packages) {
  if (packages <= 0) return;
  impl_->uploads.Add({{"mode", std::string(mode)}, {"outcome", ok ? "ready" : "failed"}})
      .Increment(static_cast<double>(packages));
}

void PrometheusMetrics::SetQueuedJobs(std::int64_t jobs) {
  impl_->queued.Set(static_cast<double>(jobs));
}

std::string PrometheusMetrics::Render() {
  return prom::TextSerializer().Serialize(impl_->registry->Collect());
}

void PrometheusMetrics::Report(const Event& event) {
  switch (event.kind) {
    case EventKind::kStoreError:
      CountStoreError("core", event.operation.empty() ? "unknown" : event.operation);
      return;
    case EventKind::kBlobReclaimed:
      impl_->reclaimed.Increment();
      return;
    case EventKind::kCollected:
      if (event.count > 0)
        impl_->collected.Add({{"what", event.operation}})
            .Increment(static_cast<double>(event.count));
      return;
    default:
      break;
  }
  const std::string_view state = EventName(event.kind);
  if (state.empty()) return;  // a kind this build does not count
  impl_->jobs.Add({{"state", std::string(state)}}).Increment();
  if (event.kind == EventKind::kJobRetrying) impl_->retries.Increment();
  if (event.kind == EventKind::kJobReady || event.kind == EventKind::kJobFailed)
    impl_->uploads
        .Add({{"mode", "async"},
              {"outcome", event.kind == EventKind::kJobReady ? "ready" : "failed"}})
        .Increment();
}

void PrometheusMetrics::AddFetchedBytes(std::int64_t bytes) {
  if (bytes > 0) impl_->fetched.Increment(static_cast<double>(bytes));
}

void PrometheusMetrics::CountFetchFailure(std::string_view failure_class) {
  impl_->fetch_failures.Add({{"class", std::string(failure_class)}}).Increment();
}

void PrometheusMetrics::CountStoreError(std::string_view store, std::string_view operation) {
  impl_->store_errors.Add({{"store", std::string(store)}, {"operation", std::string(operation)}})
      .Increment();
}

}  // namespace dlipkg
