#include "adapters/metrics/counting_decorators.hpp"

#include <utility>

namespace dlipkg {
namespace {

// Counts the bytes as they pass, so a long fetch shows progress in the counter, and tells a
// failure of the sink (the blob store) from one of the source.
class CountingSink final : public ByteSink {
 public:
  CountingSink(ByteSink& inner, PrometheusMetrics& metrics) : inner_(inner), metrics_(metrics) {}
  Result<void> Write(std::span<const char> bytes) override {
    auto written = inner_.Write(bytes);
    if (!written) {
      sink_failed_ = true;
      return written;
    }
    metrics_.AddFetchedBytes(static_cast<std::int64_t>(bytes.size()));
    return written;
  }
  // Every hook of the port passes through: a decorator that dropped Cancelled would keep
  // shutdown from reaching a stalled fetch (test_overload.py caught exactly that).
  void ExpectSize(std::int64_t bytes) override { inner_.ExpectSize(bytes); }
  std::optional<Error> Cancelled() const override { return inner_.Cancelled(); }
  bool sink_failed() const { return sink_failed_; }

 private:
  ByteSink& inner_;
  PrometheusMetrics& metrics_;
  bool sink_failed_ = false;
};

std::string_view FailureClass(const Error& error, bool sink_failed) {
  if (sink_failed) return "store";
  if (error.code == ErrorCode::kBadRequest) return "refused";
  if (error.retryable) return "transient";
  return "permanent";
}

// Store calls fail with kInternal; kNotFound is an answer, not a failure.
template <class T>
Result<T> Counted(Result<T> result, PrometheusMetrics& metrics, std::string_view operation) {
  if (!result && result.error().code == ErrorCode::kInternal)
    metrics.CountStoreError("blob", operation);
  return result;
}

class CountingWriter final : public BlobWriter {
 public:
  CountingWriter(std::unique_ptr<BlobWriter> inner, PrometheusMetrics& metrics)
      : inner_(std::move(inner)), metrics_(metrics) {}
  Result<void> Write(std::span<const char> bytes) override {
    return Counted(inner_->Write(bytes), metrics_, "write");
  }
  Result<BlobInfo> Seal() override { return Counted(inner_->Seal(), metrics_, "commit"); }
  Result<BlobInfo> Commit() override { return Counted(inner_->Commit(), metrics_, "commit"); }
  // The batch hooks pass through too: the defaults would commit each writer on its own.
  Result<void> BeginSeal() override { return Counted(inner_->BeginSeal(), metrics_, "commit"); }
  Result<BlobInfo> Publish() override { return Counted(inner_->Publish(), metrics_, "commit"); }
  Result<void> SyncPublished() override {
    return Counted(inner_->SyncPublished(), metrics_, "commit");
  }
  void ExpectSize(std::int64_t bytes) override { inner_->ExpectSize(bytes); }
  std::optional<Error> Cancelled() const override { return inner_->Cancelled(); }

 private:
  std::unique_ptr<BlobWriter> inner_;
  PrometheusMetrics& metrics_;
};

class CountingReader final : public BlobReader {
 public:
  CountingReader(std::unique_ptr<BlobReader> inner, PrometheusMetrics& metrics)
      : inner_(std::move(inner)), metrics_(metrics) {}
  std::int64_t Size() const override { return inner_->Size(); }
  Result<std::size_t> Read(std::span<char> buffer) override {
    return Counted(inner_->Read(buffer), metrics_, "read");
  }
  Result<void> Seek(std::int64_t offset) override {
    return Counted(inner_->Seek(offset), metrics_, "seek");
  }
  // Without these a verified blob would lose its sendfile path whenever metrics are on.
  std::optional<FileRegion> Region() override { return inner_->Region(); }
  Result<void> ConfirmUnchanged() override {
    return Counted(inner_->ConfirmUnchanged(), metrics_, "confirm");
  }

 private:
  std::unique_ptr<BlobReader> inner_;
  PrometheusMetrics& metrics_;
};

}  // namespace

Result<std::int64_t> CountingFetcher::Fetch(std::string_view url, ByteSink& sink) {
  CountingSink counting(sink, metrics_);
  auto fetched = inner_.Fetch(url, counting);
  if (!fetched) metrics_.CountFetchFailure(FailureClass(fetched.error(), counting.sink_failed()));
  return fetched;
}

Result<std::unique_ptr<BlobWriter>> CountingBlobStore::Create() {
  auto writer = Counted(inner_.Create(), metrics_, "create");
  if (!writer) return writer;
  return std::unique_ptr<BlobWriter>(new CountingWriter(std::move(*writer), metrics_));
}

Result<std::unique_ptr<BlobReader>> CountingBlobStore::Open(const std::string& sha256) {
  auto reader = Counted(inner_.Open(sha256), metrics_, "open");
  if (!reader) return reader;
  return std::unique_ptr<BlobReader>(new CountingReader(std::move(*reader), metrics_));
}

Result<bool> CountingBlobStore::Exists(const std::string& sha256) {
  return Counted(inner_.Exists(sha256), metrics_, "exists");
}

Result<void> CountingBlobStore::Remove(const std::string& sha256) {
  return Counted(inner_.Remove(sha256), metrics_, "remove");
}

Result<std::vector<std::string>> CountingBlobStore::List() {
  return Counted(inner_.List(), metrics_, "list");
}

Result<std::size_t> CountingBlobStore::SweepTemporaries(std::chrono::milliseconds min_age) {
  return Counted(inner_.SweepTemporaries(min_age), metrics_, "sweep");
}

}  // namespace dlipkg
