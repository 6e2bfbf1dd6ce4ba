// PrometheusMetrics and its decorators: what is counted, under which names and labels.
#include "adapters/metrics/prometheus_metrics.hpp"

#include <gtest/gtest.h>

#include <string>

#include "adapters/metrics/counting_decorators.hpp"

namespace dlipkg {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

TEST(PrometheusMetrics, RequestsAreCountedByRouteMethodAndStatus) {
  PrometheusMetrics metrics("9.9.9");
  const RequestSample show{.route = "/v2.0/{project_id}/resources/{resource_name}",
                           .method = "GET",
                           .status = 404,
                           .seconds = 0.002,
                           .bytes_sent = 100};
  metrics.ObserveRequest(show);
  metrics.ObserveRequest(show);
  metrics.ObserveRequest(RequestSample{.route = "unmatched", .method = "BREW", .status = 404});
  const std::string text = metrics.Render();
  EXPECT_TRUE(Has(text, "dlipkg_build_info{version=\"9.9.9\"} 1")) << text;
  EXPECT_TRUE(Has(text,
                  "dlipkg_http_requests_total{method=\"GET\",route=\"/v2.0/{project_id}/resources/"
                  "{resource_name}\",status=\"404\"} 2"))
      << text;
  // A method outside the known set cannot grow the series.
  EXPECT_TRUE(Has(text,
                  "dlipkg_http_requests_total{method=\"other\",route=\"unmatched\","
                  "status=\"404\"} 1"))
      << text;
  EXPECT_TRUE(Has(text, "dlipkg_served_bytes_total 200")) << text;
  EXPECT_TRUE(Has(text,
                  "dlipkg_http_request_duration_seconds_count{route=\"/v2.0/{project_id}/"
                  "resources/{resource_name}\"} 2"))
      << text;
}

TEST(PrometheusMetrics, JobEventsBecomeJobAndUploadCounters) {
  PrometheusMetrics metrics("1");
  for (auto kind : {EventKind::kJobQueued, EventKind::kJobStarted, EventKind::kJobRetrying,
                    EventKind::kJobStarted, EventKind::kJobFailed, EventKind::kJobQueued,
                    EventKind::kJobStarted, EventKind::kJobReady})
    metrics.Report(Event{.kind = kind});
  metrics.Report(Event{.kind = EventKind::kStoreError, .operation = "renew lease"});
  metrics.CountUploads("sync", true, 3);
  metrics.CountUploads("sync", false, 2);
  metrics.SetQueuedJobs(7);
  const std::string text = metrics.Render();
  EXPECT_TRUE(Has(text, "dlipkg_jobs_total{state=\"queued\"} 2")) << text;
  EXPECT_TRUE(Has(text, "dlipkg_jobs_total{state=\"started\"} 3")) << text;
  EXPECT_TRUE(Has(text, "dlipkg_jobs_total{state=\"retrying\"} 1")) << text;
  EXPECT_TRUE(Has(text, "dlipkg_job_retries_total 1")) << text;
  EXPECT_TRUE(Has(text, "dlipkg_uploads_total{mode=\"async\",outcome=\"failed\"} 1")) << text;
  EXPECT_TRUE(Has(text, "dlipkg_uploads_total{mode=\"async\",outcome=\"ready\"} 1")) << text;
  EXPECT_TRUE(Has(text, "dlipkg_uploads_total{mode=\"sync\",outcome=\"ready\"} 3")) << text;
  EXPECT_TRUE(Has(text, "dlipkg_uploads_total{mode=\"sync\",outcome=\"failed\"} 2")) << text;
  EXPECT_TRUE(Has(text, "dlipkg_jobs_queued 7")) << text;
  EXPECT_TRUE(Has(text, "dlipkg_store_errors_total{operation=\"renew lease\",store=\"core\"} 1"))
      << text;
}

// A fetcher that writes `chunks` into the sink, then fails with `error` (if any).
class ScriptedFetcher final : public SourceFetcher {
 public:
  ScriptedFetcher(int chunks, std::optional<Error> error) : chunks_(chunks), error_(error) {}
  Result<std::int64_t> Fetch(std::string_view, ByteSink& sink) override {
    const std::string chunk(10, 'x');
    for (int i = 0; i < chunks_; ++i)
      if (auto ok = sink.Write(chunk); !ok) return std::unexpected(ok.error());
    if (error_) return std::unexpected(*error_);
    return chunks_ * 10;
  }

 private:
  int chunks_;
  std::optional<Error> error_;
};

class NullSink final : public ByteSink {
 public:
  explicit NullSink(bool fail = false) : fail_(fail) {}
  Result<void> Write(std::span<const char>) override {
    if (fail_) return Fail(ErrorCode::kInternal, "disk full");
    return {};
  }

 private:
  bool fail_;
};

TEST(CountingFetcher, CountsBytesAndClassifiesFailures) {
  PrometheusMetrics metrics("1");
  NullSink sink;
  ScriptedFetcher ok(3, std::nullopt);
  ASSERT_TRUE(CountingFetcher(ok, metrics).Fetch("u", sink));
  ScriptedFetcher refused(0, Error{ErrorCode::kBadRequest, "policy"});
  ScriptedFetcher transient(1, Error{ErrorCode::kSourceUnavailable, "reset", true});
  ScriptedFetcher permanent(0, Error{ErrorCode::kSourceUnavailable, "404"});
  for (SourceFetcher* f : std::initializer_list<SourceFetcher*>{&refused, &transient, &permanent})
    EXPECT_FALSE(CountingFetcher(*f, metrics).Fetch("u", sink));
  NullSink broken(/*fail=*/true);
  EXPECT_FALSE(CountingFetcher(ok, metrics).Fetch("u", broken));
  const std::string text = metrics.Render();
  EXPECT_TRUE(Has(text, "dlipkg_fetched_bytes_total 40")) << text;
  for (const char* name : {"refused", "transient", "permanent", "store"})
    EXPECT_TRUE(Has(text, std::string("dlipkg_fetch_failures_total{class=\"") + name + "\"} 1"))
        << name << "\n"
        << text;
}

// The decorators pass every hook of the ports through: a dropped Cancelled kept SIGTERM from
// reaching a stalled fetch, and a dropped Region turned off sendfile, whenever metrics were on.
class AskingFetcher final : public SourceFetcher {
 public:
  Result<std::int64_t> Fetch(std::string_view, ByteSink& sink) override {
    sink.ExpectSize(42);
    cancelled = sink.Cancelled();
    return 0;
  }
  std::optional<Error> cancelled;
};

class CancelledSink final : public ByteSink {
 public:
  Result<void> Write(std::span<const char>) override { return {}; }
  void ExpectSize(std::int64_t bytes) override { expected = bytes; }
  std::optional<Error> Cancelled() const override {
    return Error{ErrorCode::kShuttingDown, "stop"};
  }
  std::int64_t expected = 0;
};

class RegionReader final : public BlobReader {
 public:
  std::int64_t Size() const override { return 5; }
  Result<std::size_t> Read(std::span<char>) override { return 0; }
  Result<void> Seek(std::int64_t) override { return {}; }
  std::optional<FileRegion> Region() override {
    return FileRegion{.fd = 7, .offset = 1, .length = 5};
  }
  Result<void> ConfirmUnchanged() override { return Fail(ErrorCode::kCorrupted, "changed"); }
};

class RegionStore final : public BlobStore {
 public:
  Result<std::unique_ptr<BlobWriter>> Create() override { return Fail(ErrorCode::kInternal, "no"); }
  Result<std::unique_ptr<BlobReader>> Open(const std::string&) override {
    return std::make_unique<RegionReader>();
  }
  Result<bool> Exists(const std::string&) override { return true; }
  Result<void> Remove(const std::string&) override { return {}; }
  Result<std::vector<std::string>> List() override { return std::vector<std::string>{}; }
  Result<std::size_t> SweepTemporaries(std::chrono::milliseconds) override { return 0; }
};

TEST(CountingDecorators, PassEveryHookOfThePortsThrough) {
  PrometheusMetrics metrics("1");
  AskingFetcher asking;
  CancelledSink sink;
  ASSERT_TRUE(CountingFetcher(asking, metrics).Fetch("u", sink));
  EXPECT_EQ(sink.expected, 42);
  ASSERT_TRUE(asking.cancelled);
  EXPECT_EQ(asking.cancelled->code, ErrorCode::kShuttingDown);

  RegionStore store;
  CountingBlobStore counted(store, metrics);
  auto reader = counted.Open(std::string(64, 'a'));
  ASSERT_TRUE(reader);
  auto region = (*reader)->Region();
  ASSERT_TRUE(region);
  EXPECT_EQ(region->fd, 7);
  EXPECT_EQ(region->length, 5);
  EXPECT_EQ((*reader)->ConfirmUnchanged().error().code, ErrorCode::kCorrupted);
}

}  // namespace
}  // namespace dlipkg
