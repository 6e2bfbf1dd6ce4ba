#include "adapters/blobs/s3_blob_store.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string_view>
#include <vector>

#include "adapters/blobs/verifying_reader.hpp"
#include "adapters/common/sha256.hpp"
#include "adapters/common/utc_time.hpp"
#include "adapters/s3/failure_class.hpp"
#include "adapters/s3/s3_request.hpp"
#include "adapters/s3/s3_xml.hpp"

namespace dlipkg {
namespace {

constexpr std::int64_t kMinPartBytes = 5LL << 20;  // S3's floor for every part but the last
constexpr std::int64_t kMaxPartBytes = 5LL << 30;
constexpr std::int64_t kMaxCopyBytes = 5LL << 30;  // CopyObject's limit in S3 and Swift
constexpr int kMaxParts = 10'000;
constexpr std::size_t kMaxXmlBytes = 8 << 20;  // a listing page of 1000 keys is ~300 KiB
constexpr std::size_t kIdleHandles = 16;
constexpr char kUserAgent[] = "dlipkg/0.1";

bool IsBlobKey(std::string_view key) {
  return key.size() == 64 && std::ranges::all_of(key, [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Prefix characters need no escaping in a URL path nor in XML, so keys read back from a listing
// compare byte for byte with the ones we wrote.
bool IsValidPrefix(std::string_view prefix) {
  if (prefix.empty()) return true;
  for (std::string_view rest = prefix; !rest.empty();) {
    const auto slash = rest.find('/');
    const std::string_view segment = rest.substr(0, slash);
    if (segment.empty() || segment == "." || segment == "..") return false;
    if (!std::ranges::all_of(segment, [](unsigned char c) {
          return std::isalnum(c) || c == '-' || c == '_' || c == '.';
        }))
      return false;
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  }
  return true;
}

std::string RandomName() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  char name[40];
  std::snprintf(name, sizeof name, "%016llx%016llx", static_cast<unsigned long long>(random()),
                static_cast<unsigned long long>(random()));
  return name;
}

std::int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// ---- One request ----

struct S3Call {
  std::string_view operation;                   // S3's name for it, for messages: "UploadPart"
  std::string_view method;                      // GET HEAD PUT POST DELETE
  std::string key{};                            // below the bucket; "" for the bucket itself
  std::string query{};                          // names and values already SigV4Encode'd
  std::optional<std::span<const char>> body{};  // PUT and POST send one, even empty
  std::string payload_sha256{};                 // hex; "" sends UNSIGNED-PAYLOAD
  std::vector<std::string> headers{};
  std::size_t max_reply = kMaxXmlBytes;
  std::vector<long> ok = {200};  // statuses that are not failures
};

struct S3Reply {
  long status = 0;
  std::string body{};
  std::string etag{};
  std::int64_t length = -1;  // Content-Length of a HEAD
};

struct Exchange {
  std::span<const char> upload{};
  std::string* reply = nullptr;
  std::size_t max_reply = 0;
  bool overflow = false;
};

std::size_t OnRead(char* buffer, std::size_t size, std::size_t count, void* context) {
  auto& exchange = *static_cast<Exchange*>(context);
  const std::size_t n = std::min(size * count, exchange.upload.size());
  std::memcpy(buffer, exchange.upload.data(), n);
  exchange.upload = exchange.upload.subspan(n);
  return n;
}

std::size_t OnWrite(char* data, std::size_t, std::size_t count, void* context) {
  auto& exchange = *static_cast<Exchange*>(context);
  if (exchange.reply->size() + count > exchange.max_reply) {
    exchange.overflow = true;
    return 0;
  }
  exchange.reply->append(data, count);
  return count;
}

// Messages reach clients and logs: the operation and S3's code or status, never a key or secret.
std::unexpected<Error> StoreFailure(std::string_view operation, std::string_view cause,
                                    bool retryable) {
  return Fail(ErrorCode::kInternal,
              "blob store failure: " + std::string(operation) + ": " + std::string(cause),
              retryable);
}

// Retryable or not is the shared policy's (failure_class.hpp): every S3 failure is kInternal
// to our clients, but a job runner retries the transient ones.
std::unexpected<Error> StatusFailure(std::string_view operation, const S3Reply& reply) {
  const std::string code = S3ErrorCode(reply.body);
  return StoreFailure(
      operation, (code.empty() ? "" : code + " ") + "(HTTP " + std::to_string(reply.status) + ")",
      ClassifyStatus(reply.status, code) == FailureClass::kRetry);
}

std::unexpected<Error> CurlFailure(std::string_view operation, CURLcode code) {
  const TransportFailure failure = ClassifyTransport(code);
  return StoreFailure(operation, failure.cause, failure.failure == FailureClass::kRetry);
}

}  // namespace

struct S3BlobStore::Impl {
  S3BlobStoreOptions options;
  std::string blobs_prefix;  // <prefix>blobs/
  std::string temp_prefix;   // <prefix>tmp/
  std::mutex idle_mutex;
  std::vector<EasyHandle> idle;  // kept so their connections are reused

  std::string ContentKey(std::string_view sha256) const {
    return blobs_prefix + std::string(sha256);
  }

  EasyHandle Acquire() {
    std::lock_guard lock(idle_mutex);
    if (idle.empty()) return EasyHandle(curl_easy_init());
    EasyHandle easy = std::move(idle.back());
    idle.pop_back();
    return easy;
  }

  void Release(EasyHandle easy) {
    curl_easy_reset(easy.get());  // keeps the connection cache
    std::lock_guard lock(idle_mutex);
    if (idle.size() < kIdleHandles) idle.push_back(std::move(easy));
  }

  Result<S3Reply> Send(const S3Call& call);
  Result<std::optional<std::int64_t>> Head(const std::string& key);
  Result<void> Delete(const std::string& key);
  Result<void> Put(const std::string& key, std::span<const char> body, const std::string& sha256);
  Result<void> Copy(const std::string& from, const std::string& to);
  Result<void> AbortUpload(const std::string& key, const std::string& upload_id);
  // Calls `each` with every object of a ListObjectsV2 under `prefix`, page after page.
  Result<void> ListObjects(const std::string& prefix,
                           const std::function<Result<void>(const S3Object&)>& each);
  // Likewise for the multipart uploads in progress under `prefix` (ListMultipartUploads).
  Result<void> ListUploads(const std::string& prefix,
                           const std::function<Result<void>(const S3Upload&)>& each);
};

Result<S3Reply> S3BlobStore::Impl::Send(const S3Call& call) {
  const std::string operation(call.operation);
  auto url = CanonicalObjectUrl(options.store, options.bucket, call.key, call.query);
  if (!url) return StoreFailure(operation, "cannot build the request URL", false);
  // A bucket request in path style is "/bucket", not "/bucket/": Swift signs the path without
  // the slash, so a signature over the slash never matches.
  if (call.key.empty() && options.store.addressing == Addressing::kPath)
    url->erase(std::min(url->find('?'), url->size()) - 1, 1);
  EasyHandle easy = Acquire();
  if (!easy) return StoreFailure(operation, "cannot start a transfer", false);
  S3Reply reply;
  Exchange exchange{.upload = call.body.value_or(std::span<const char>()),
                    .reply = &reply.body,
                    .max_reply = call.max_reply};
  HeaderList headers(
      curl_slist_append(nullptr, call.payload_sha256.empty()
                                     ? kUnsignedPayloadHeader
                                     : ("x-amz-content-sha256: " + call.payload_sha256).c_str()));
  // No "Expect:" to save the 100-continue round trip: libcurl 7.88 signs the emptied header
  // that it then does not send, and every upload fails with SignatureDoesNotMatch.
  for (const std::string& header : call.headers) {
    if (headers) headers.reset(curl_slist_append(headers.release(), header.c_str()));
  }
  CURL* h = easy.get();
  CURLcode set = headers ? CURLE_OK : CURLE_OUT_OF_MEMORY;
  const auto check = [&set](CURLcode code) {
    if (set == CURLE_OK) set = code;
  };
  check(curl_easy_setopt(h, CURLOPT_URL, url->c_str()));
  check(curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L));
  check(curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https"));
  check(curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L));
  check(curl_easy_setopt(h, CURLOPT_PROXY, ""));
  check(curl_easy_setopt(h, CURLOPT_USERAGENT, kUserAgent));
  check(curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT,
                         static_cast<long>(options.connect_timeout.count())));
  check(curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L));
  check(curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
                         static_cast<long>(options.stall_timeout.count())));
  check(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnWrite));
  check(curl_easy_setopt(h, CURLOPT_WRITEDATA, &exchange));
  if (call.method == "HEAD") {
    check(curl_easy_setopt(h, CURLOPT_NOBODY, 1L));
  } else if (call.body) {
    // UPLOAD streams the caller's span without a copy and without a form Content-Type.
    check(curl_easy_setopt(h, CURLOPT_UPLOAD, 1L));
    check(curl_easy_setopt(h, CURLOPT_READFUNCTION, &OnRead));
    check(curl_easy_setopt(h, CURLOPT_READDATA, &exchange));
    check(
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(call.body->size())));
  }
  if (call.method != "GET" && call.method != "HEAD" && call.method != "PUT")
    check(curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, std::string(call.method).c_str()));
  if (set == CURLE_OK)
    set = options.store.Signed() ? SetSigning(h, options.store, headers.get())
                                 : curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  if (set != CURLE_OK) return StoreFailure(operation, "cannot configure a transfer", false);
  const CURLcode code = curl_easy_perform(h);
  if (exchange.overflow) return StoreFailure(operation, "reply larger than expected", false);
  if (code != CURLE_OK) return CurlFailure(operation, code);  // the handle may be broken: dropped
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply.status);
  curl_off_t length = -1;
  if (curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) == CURLE_OK)
    reply.length = length;
  curl_header* etag = nullptr;
  if (curl_easy_header(h, "ETag", 0, CURLH_HEADER, -1, &etag) == CURLHE_OK)
    reply.etag = etag->value;
  Release(std::move(easy));
  if (std::ranges::find(call.ok, reply.status) == call.ok.end())
    return StatusFailure(operation, reply);
  // CompleteMultipartUpload and CopyObject may answer 200 and fail in the body. Only their
  // replies are looked at: a GetObject body is package bytes, whatever they contain.
  if (reply.status == 200 && call.method != "GET" && !S3ErrorCode(reply.body).empty())
    return StatusFailure(operation, reply);
  return reply;
}

Result<std::optional<std::int64_t>> S3BlobStore::Impl::Head(const std::string& key) {
  auto reply = Send({.operation = "HeadObject", .method = "HEAD", .key = key, .ok = {200, 404}});
  if (!reply) return std::unexpected(reply.error());
  if (reply->status == 404) return std::nullopt;
  return std::max<std::int64_t>(reply->length, 0);
}

Result<void> S3BlobStore::Impl::Delete(const std::string& key) {
  auto reply =
      Send({.operation = "DeleteObject", .method = "DELETE", .key = key, .ok = {200, 204, 404}});
  if (!reply) return std::unexpected(reply.error());
  return {};
}

// The payload hash is signed, so the store itself refuses bytes that changed on the way.
Result<void> S3BlobStore::Impl::Put(const std::string& key, std::span<const char> body,
                                    const std::string& sha256) {
  auto reply = Send({.operation = "PutObject",
                     .method = "PUT",
                     .key = key,
                     .body = body,
                     .payload_sha256 = sha256});
  if (!reply) return std::unexpected(reply.error());
  return {};
}

Result<void> S3BlobStore::Impl::AbortUpload(const std::string& key, const std::string& upload_id) {
  auto reply = Send({.operation = "AbortMultipartUpload",
                     .method = "DELETE",
                     .key = key,
                     .query = "uploadId=" + SigV4Encode(upload_id, false),
                     .ok = {200, 204, 404}});
  if (!reply) return std::unexpected(reply.error());
  return {};
}

// A page that fails to parse fails the listing: skipping it could hide blobs from the sweep's
// accounting or loop forever on the same marker.
Result<void> S3BlobStore::Impl::ListObjects(
    const std::string& prefix, const std::function<Result<void>(const S3Object&)>& each) {
  std::string token;
  for (;;) {
    std::string query = "list-type=2&prefix=" + SigV4Encode(prefix, false);
    if (!token.empty()) query += "&continuation-token=" + SigV4Encode(token, false);
    auto reply = Send({.operation = "ListObjectsV2", .method = "GET", .query = query});
    if (!reply) return std::unexpected(reply.error());
    auto page = ParseListObjects(reply->body);
    if (!page) return StoreFailure("ListObjectsV2", page.error().message, false);
    for (const S3Object& object : page->objects) {
      if (auto done = each(object); !done) return done;
    }
    if (!page->truncated || page->next_continuation_token.empty()) return {};
    token = std::move(page->next_continuation_token);
  }
}

Result<void> S3BlobStore::Impl::ListUploads(
    const std::string& prefix, const std::function<Result<void>(const S3Upload&)>& each) {
  std::string key_marker, upload_id_marker;
  for (;;) {
    std::string query = "prefix=" + SigV4Encode(prefix, false) + "&uploads=";
    if (!key_marker.empty()) query += "&key-marker=" + SigV4Encode(key_marker, false);
    if (!upload_id_marker.empty())
      query += "&upload-id-marker=" + SigV4Encode(upload_id_marker, false);
    auto reply = Send({.operation = "ListMultipartUploads", .method = "GET", .query = query});
    if (!reply) return std::unexpected(reply.error());
    auto page = ParseListUploads(reply->body);
    if (!page) return StoreFailure("ListMultipartUploads", page.error().message, false);
    for (const S3Upload& upload : page->uploads) {
      if (auto done = each(upload); !done) return done;
    }
    if (!page->truncated || page->next_key_marker.empty()) return {};
    key_marker = std::move(page->next_key_marker);
    upload_id_marker = std::move(page->next_upload_id_marker);
  }
}

namespace {

// One multipart upload to `key`, aborted when destroyed unless completed, so a failure anywhere
// leaves no parts billed in the bucket.
class MultipartUpload {
 public:
  MultipartUpload(S3BlobStore::Impl& s3, std::string key) : s3_(s3), key_(std::move(key)) {}
  MultipartUpload(const MultipartUpload&) = delete;
  MultipartUpload& operator=(const MultipartUpload&) = delete;
  ~MultipartUpload() { Abort(); }

  Result<void> Begin() {
    auto reply = s3_.Send({.operation = "CreateMultipartUpload",
                           .method = "POST",
                           .key = key_,
                           .query = "uploads=",
                           .body = std::span<const char>()});
    if (!reply) return std::unexpected(reply.error());
    auto id = ParseUploadId(reply->body);
    if (!id) return StoreFailure("CreateMultipartUpload", "no upload id in the reply", false);
    upload_id_ = std::move(*id);
    return {};
  }

  Result<void> UploadPart(std::span<const char> bytes) {
    return AddPart("UploadPart", {.body = bytes});
  }

  Result<void> Complete() {
    std::string xml = "<CompleteMultipartUpload>";
    for (std::size_t i = 0; i < etags_.size(); ++i)
      xml += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" + etags_[i] +
             "</ETag></Part>";
    xml += "</CompleteMultipartUpload>";
    auto reply = s3_.Send({.operation = "CompleteMultipartUpload",
                           .method = "POST",
                           .key = key_,
                           .query = "uploadId=" + SigV4Encode(upload_id_, false),
                           .body = std::span<const char>(xml)});
    if (!reply) return std::unexpected(reply.error());
    upload_id_.clear();
    return {};
  }

  // Best effort: what is left is found by SweepTemporaries.
  void Abort() {
    if (upload_id_.empty()) return;
    if (auto aborted = s3_.AbortUpload(key_, upload_id_); !aborted)
      spdlog::warn("{} (left for the sweep)", aborted.error().message);
    upload_id_.clear();
  }

  std::size_t Parts() const { return etags_.size(); }

 private:
  Result<void> AddPart(std::string_view operation, S3Call call) {
    if (etags_.size() >= kMaxParts)
      return StoreFailure(operation, "more than 10000 parts (raise the part size)", false);
    call.operation = operation;
    call.method = "PUT";
    call.key = key_;
    call.query = "partNumber=" + std::to_string(etags_.size() + 1) +
                 "&uploadId=" + SigV4Encode(upload_id_, false);
    if (!call.body) call.body = std::span<const char>();
    auto reply = s3_.Send(call);
    if (!reply) return std::unexpected(reply.error());
    std::string etag = reply->etag;
    if (etag.empty()) return StoreFailure(operation, "no ETag in the reply", false);
    etags_.push_back(std::move(etag));
    return {};
  }

  S3BlobStore::Impl& s3_;
  std::string key_;
  std::string upload_id_;  // empty: nothing to abort
  std::vector<std::string> etags_;
};

}  // namespace

// One CopyObject: the writer keeps objects within its limit (S3's and Swift's 5 GiB).
Result<void> S3BlobStore::Impl::Copy(const std::string& from, const std::string& to) {
  auto reply = Send(
      {.operation = "CopyObject",
       .method = "PUT",
       .key = to,
       .body = std::span<const char>(),
       .headers = {"x-amz-copy-source: " + SigV4Encode("/" + options.bucket + "/" + from, true)}});
  if (!reply) return std::unexpected(reply.error());
  return {};
}

namespace {

class S3BlobWriter final : public BlobWriter {
 public:
  explicit S3BlobWriter(std::shared_ptr<S3BlobStore::Impl> s3) : s3_(std::move(s3)) {}
  ~S3BlobWriter() override { Discard(); }

  Result<void> Write(std::span<const char> bytes) override {
    if (spent_ || sealed_) return StoreFailure("write", "writer is spent", false);
    // Refused as soon as it is known, not after uploading gigabytes that could not be copied.
    if (static_cast<std::int64_t>(bytes.size()) > s3_->options.max_object_bytes - size_)
      return Abandon(Error{ErrorCode::kInternal,
                           "blob store failure: object larger than the S3 store's limit of " +
                               std::to_string(s3_->options.max_object_bytes) + " bytes"});
    hasher_.Update(bytes);
    size_ += static_cast<std::int64_t>(bytes.size());
    const auto part = static_cast<std::size_t>(s3_->options.part_bytes);
    while (!bytes.empty()) {
      if (buffer_.capacity() < part) buffer_.reserve(part);
      const std::size_t take = std::min(bytes.size(), part - buffer_.size());
      buffer_.insert(buffer_.end(), bytes.begin(),
                     bytes.begin() + static_cast<std::ptrdiff_t>(take));
      bytes = bytes.subspan(take);
      if (buffer_.size() < part) break;
      if (auto sent = SendPart(); !sent) return Abandon(sent.error());
    }
    return {};
  }

  // Small blobs: the hash is known before anything is sent, so they go straight to their
  // content key. Large ones: the completed upload is a temporary object, copied to the content
  // key (unless that exists already) and then deleted.
  // Only the hash: the bytes are published (uploaded or completed) by Commit.
  Result<BlobInfo> Seal() override {
    if (sealed_) return *sealed_;
    if (spent_) return StoreFailure("commit", "writer is spent", false);
    sealed_ = BlobInfo{hasher_.FinishHex(), size_};
    return *sealed_;
  }

  Result<BlobInfo> Commit() override {
    auto sealed = Seal();
    if (!sealed) return sealed;
    if (spent_) return StoreFailure("commit", "writer is spent", false);
    spent_ = true;
    const BlobInfo info = *sealed;
    const std::string content_key = s3_->ContentKey(info.sha256);
    if (!upload_) {
      auto existing = s3_->Head(content_key);
      if (!existing) return Abandon(existing.error());
      if (!*existing) {
        if (auto put = s3_->Put(content_key, buffer_, info.sha256); !put)
          return Abandon(put.error());
      }
      Discard();
      return info;
    }
    if (!buffer_.empty()) {
      if (auto sent = SendPart(); !sent) return Abandon(sent.error());
    }
    std::vector<char>().swap(buffer_);
    if (auto completed = upload_->Complete(); !completed) return Abandon(completed.error());
    temp_object_ = true;
    auto existing = s3_->Head(content_key);
    if (!existing) return Abandon(existing.error());
    if (!*existing) {
      if (auto copied = s3_->Copy(temp_key_, content_key); !copied) return Abandon(copied.error());
    }
    Discard();
    return info;
  }

 private:
  Result<void> SendPart() {
    if (!upload_) {
      temp_key_ = s3_->temp_prefix + RandomName();
      upload_.emplace(*s3_, temp_key_);
      if (auto begun = upload_->Begin(); !begun) return begun;
    }
    auto sent = upload_->UploadPart(buffer_);
    buffer_.clear();
    return sent;
  }

  // A failed writer cannot be resumed: clean up now rather than at destruction.
  std::unexpected<Error> Abandon(Error error) {
    spent_ = true;
    Discard();
    return std::unexpected(std::move(error));
  }

  void Discard() {
    upload_.reset();  // aborts an upload not completed
    if (temp_object_) {
      if (auto deleted = s3_->Delete(temp_key_); !deleted)
        spdlog::warn("{} (left for the sweep)", deleted.error().message);
      temp_object_ = false;
    }
    std::vector<char>().swap(buffer_);
  }

  std::shared_ptr<S3BlobStore::Impl> s3_;
  Sha256Hasher hasher_;
  std::vector<char> buffer_;  // at most one part
  std::int64_t size_ = 0;
  std::string temp_key_;
  std::optional<MultipartUpload> upload_;  // from the first full part on
  bool temp_object_ = false;               // the completed upload still to delete
  bool spent_ = false;
  std::optional<BlobInfo> sealed_;  // the hash, once writing ended
};

// Ranged GETs of one chunk each: memory stays at one chunk whatever the object's size, and a
// slow consumer holds no connection open between reads.
class S3BlobReader final : public BlobReader {
 public:
  S3BlobReader(std::shared_ptr<S3BlobStore::Impl> s3, std::string key, std::int64_t size)
      : s3_(std::move(s3)), key_(std::move(key)), size_(size) {}
  std::int64_t Size() const override { return size_ - start_; }

  Result<void> Seek(std::int64_t offset) override {
    if (offset < 0 || start_ + offset > size_)
      return Fail(ErrorCode::kBadRequest, "seek past the end");
    start_ += offset;
    fetched_ = start_;
    chunk_.clear();
    position_ = 0;
    return {};
  }

  Result<std::size_t> Read(std::span<char> buffer) override {
    if (position_ == chunk_.size()) {
      if (fetched_ >= size_ || buffer.empty()) return 0;
      const std::int64_t last = std::min(fetched_ + s3_->options.read_chunk_bytes, size_) - 1;
      const auto expected = static_cast<std::size_t>(last - fetched_ + 1);
      chunk_.clear();
      auto reply = s3_->Send(
          {.operation = "GetObject",
           .method = "GET",
           .key = key_,
           .headers = {"Range: bytes=" + std::to_string(fetched_) + "-" + std::to_string(last)},
           .max_reply = expected,
           .ok = {206, 200}});
      if (!reply) return std::unexpected(reply.error());
      if (reply->body.size() != expected)
        return StoreFailure("GetObject", "the object changed size while being read", false);
      chunk_ = std::move(reply->body);
      position_ = 0;
      fetched_ = last + 1;
    }
    const std::size_t n = std::min(buffer.size(), chunk_.size() - position_);
    std::memcpy(buffer.data(), chunk_.data() + position_, n);
    position_ += n;
    return n;
  }

 private:
  std::shared_ptr<S3BlobStore::Impl> s3_;
  std::string key_;
  std::int64_t size_;
  std::int64_t start_ = 0;    // where the reader was sought to
  std::int64_t fetched_ = 0;  // offset up to which bytes were requested
  std::string chunk_;
  std::size_t position_ = 0;  // in chunk_
};

Result<void> ValidateOptions(const S3BlobStoreOptions& options) {
  const auto bad = [](std::string_view why) {
    return Fail(ErrorCode::kBadRequest, "blob store: " + std::string(why));
  };
  auto stores = ObjectStores::Create({options.store});
  if (!stores) return std::unexpected(stores.error());
  if (auto serves = stores->StoreForBucket(options.bucket); !serves)
    return std::unexpected(serves.error());
  if (!IsValidPrefix(options.prefix))
    return bad("the prefix must be '/'-separated segments of A-Z a-z 0-9 - _ .");
  if (options.part_bytes < kMinPartBytes || options.part_bytes > kMaxPartBytes)
    return bad("the part size must be between 5 MiB and 5 GiB");
  if (options.max_object_bytes < 0 || options.max_object_bytes > kMaxCopyBytes)
    return bad("the object size limit must be between 0 and 5 GiB");
  if (options.read_chunk_bytes <= 0) return bad("the read chunk must be positive");
  return {};
}

}  // namespace

Result<std::unique_ptr<S3BlobStore>> S3BlobStore::Open(S3BlobStoreOptions options) {
  if (auto ready = InitCurlOnce(); !ready) return std::unexpected(ready.error());
  if (auto valid = ValidateOptions(options); !valid) return std::unexpected(valid.error());
  if (!options.prefix.empty() && !options.prefix.ends_with('/')) options.prefix += '/';
  auto impl = std::make_shared<Impl>();
  impl->blobs_prefix = options.prefix + "blobs/";
  impl->temp_prefix = options.prefix + "tmp/";
  impl->options = std::move(options);
  if (impl->options.create_bucket) {
    auto made = impl->Send({.operation = "CreateBucket",
                            .method = "PUT",
                            .body = std::span<const char>(),
                            .ok = {200, 409}});
    if (!made) return std::unexpected(made.error());
  }
  // Fails now, at start, rather than on the first upload: a wrong endpoint, key or bucket.
  auto bucket = impl->Send({.operation = "HeadBucket", .method = "HEAD"});
  if (!bucket) return std::unexpected(bucket.error());
  return std::unique_ptr<S3BlobStore>(new S3BlobStore(std::move(impl)));
}

S3BlobStore::S3BlobStore(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
S3BlobStore::~S3BlobStore() = default;

Result<std::unique_ptr<BlobWriter>> S3BlobStore::Create() {
  return std::make_unique<S3BlobWriter>(impl_);
}

Result<std::unique_ptr<BlobReader>> S3BlobStore::Open(const std::string& sha256) {
  if (!IsBlobKey(sha256)) return Fail(ErrorCode::kNotFound, "blob not found: invalid key");
  std::string key = impl_->ContentKey(sha256);
  auto size = impl_->Head(key);
  if (!size) return std::unexpected(size.error());
  if (!*size) return Fail(ErrorCode::kNotFound, "blob not found: " + sha256);
  return std::make_unique<VerifyingReader>(
      std::make_unique<S3BlobReader>(impl_, std::move(key), **size), sha256);
}

Result<void> S3BlobStore::CheckReady() {
  auto reply = impl_->Send(
      {.operation = "ListObjectsV2",
       .method = "GET",
       .query = "list-type=2&max-keys=1&prefix=" + SigV4Encode(impl_->blobs_prefix, false)});
  if (!reply) return std::unexpected(reply.error());
  return {};
}

Result<bool> S3BlobStore::Exists(const std::string& sha256) {
  if (!IsBlobKey(sha256)) return false;
  auto size = impl_->Head(impl_->ContentKey(sha256));
  if (!size) return std::unexpected(size.error());
  return size->has_value();
}

Result<void> S3BlobStore::Remove(const std::string& sha256) {
  if (!IsBlobKey(sha256)) return Fail(ErrorCode::kBadRequest, "blob store remove: invalid key");
  return impl_->Delete(impl_->ContentKey(sha256));
}

Result<std::vector<std::string>> S3BlobStore::List() {
  std::vector<std::string> keys;
  auto listed =
      impl_->ListObjects(impl_->blobs_prefix, [&](const S3Object& object) -> Result<void> {
        const std::string& key = object.key;
        const std::string_view name =
            std::string_view(key).substr(std::min(key.size(), impl_->blobs_prefix.size()));
        if (key.starts_with(impl_->blobs_prefix) && IsBlobKey(name)) keys.emplace_back(name);
        return {};
      });
  if (!listed) return std::unexpected(listed.error());
  return keys;
}

namespace {

// Whether an S3 timestamp is at least `min_age` old; an unreadable one counts as old, so that
// garbage cannot pile up because of a format we did not expect. Age 0 is everything: Swift
// rounds its timestamps up to the next second, so "now" may still be before them.
bool OldEnough(std::string_view timestamp, std::chrono::milliseconds min_age) {
  if (min_age.count() == 0) return true;
  const auto at = ParseRfc3339Ms(timestamp);
  return !at || NowMs() - *at >= min_age.count();
}

}  // namespace

Result<std::size_t> S3BlobStore::SweepTemporaries(std::chrono::milliseconds min_age) {
  std::size_t removed = 0;
  auto objects =
      impl_->ListObjects(impl_->temp_prefix, [&](const S3Object& object) -> Result<void> {
        if (!OldEnough(object.last_modified, min_age)) return {};
        if (auto deleted = impl_->Delete(object.key); !deleted) return deleted;
        ++removed;
        return {};
      });
  if (!objects) return std::unexpected(objects.error());
  // Both prefixes: a crash in a part-by-part copy leaves an upload on a content key.
  auto uploads =
      impl_->ListUploads(impl_->options.prefix, [&](const S3Upload& upload) -> Result<void> {
        const std::string& key = upload.key;
        if (!key.starts_with(impl_->temp_prefix) && !key.starts_with(impl_->blobs_prefix))
          return {};
        if (!OldEnough(upload.initiated, min_age)) return {};
        if (auto aborted = impl_->AbortUpload(key, upload.upload_id); !aborted) return aborted;
        ++removed;
        return {};
      });
  if (!uploads) return std::unexpected(uploads.error());
  return removed;
}

Result<std::size_t> S3BlobStore::CountTemporaries() {
  std::size_t count = 0;
  const auto counted = [&](const auto&) -> Result<void> {
    ++count;
    return {};
  };
  if (auto objects = impl_->ListObjects(impl_->temp_prefix, counted); !objects)
    return std::unexpected(objects.error());
  if (auto uploads = impl_->ListUploads(impl_->options.prefix, counted); !uploads)
    return std::unexpected(uploads.error());
  return count;
}

}  // namespace dlipkg
