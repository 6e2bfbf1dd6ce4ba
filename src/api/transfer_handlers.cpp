#include "api/transfer_handlers.hpp"

#include "api/handlers.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "api/call_params.hpp"
#include "api/download_headers.hpp"
#include "api/error_table.hpp"
#include "api/json_codec.hpp"
#include "api/ops_handlers.hpp"
#include "domain/names.hpp"

namespace dlipkg::api {
namespace {

// A buffered body (an empty streamed one arrives this way) as a ByteSource.
class StringSource final : public ByteSource {
 public:
  explicit StringSource(std::string_view bytes) : bytes_(bytes) {}
  Result<std::size_t> Read(std::span<char> buffer) override {
    const std::size_t n = std::min(buffer.size(), bytes_.size());
    std::memcpy(buffer.data(), bytes_.data(), n);
    bytes_.remove_prefix(n);
    return n;
  }

 private:
  std::string_view bytes_;
};

// At most `length` bytes of a reader already sought to the range's start (a 206 answer).
class RangeReader final : public BlobReader {
 public:
  RangeReader(std::unique_ptr<BlobReader> inner, std::int64_t length)
      : inner_(std::move(inner)), left_(length) {}
  std::int64_t Size() const override { return left_; }
  Result<void> Seek(std::int64_t) override {
    return Fail(ErrorCode::kInternal, "a range is sought once");
  }
  Result<std::size_t> Read(std::span<char> buffer) override {
    if (left_ == 0) return 0;
    auto n = inner_->Read(buffer.first(std::min<std::size_t>(buffer.size(), left_)));
    if (n) left_ -= static_cast<std::int64_t>(*n);
    return n;
  }
  std::optional<FileRegion> Region() override {
    auto region = inner_->Region();
    if (region) region->length = std::min(region->length, left_);
    return region;
  }
  Result<void> ConfirmUnchanged() override { return inner_->ConfirmUnchanged(); }

 private:
  std::unique_ptr<BlobReader> inner_;
  std::int64_t left_;
};

// A body whose bytes also go through a checksum as they pass.
class ChecksummedSource final : public ByteSource {
 public:
  ChecksummedSource(ByteSource& inner, BodyChecksum& checksum)
      : inner_(inner), checksum_(checksum) {}
  Result<std::size_t> Read(std::span<char> buffer) override {
    auto got = inner_.Read(buffer);
    if (got) checksum_.Update(buffer.first(*got));
    return got;
  }
  Result<std::span<const char>> Lend(std::span<char> scratch) override {
    auto lent = inner_.Lend(scratch);
    if (lent) checksum_.Update(*lent);
    return lent;
  }

 private:
  ByteSource& inner_;
  BodyChecksum& checksum_;
};

Response JsonAnswer(std::string body) {
  Response response;
  response.body = std::move(body);
  return response;
}

// The body of an upload, and the announced length checked against the limit before any byte
// is read (a chunked body is checked while it streams).
Result<ByteSource*> BodyOf(const ApiContext& context, const Call& call, StringSource& buffered) {
  if (call.request.body_stream == nullptr) return &buffered;
  const auto length = call.request.body_stream->Length();
  if (length && *length > static_cast<std::uint64_t>(context.options.transfer.max_object_bytes))
    return Fail(ErrorCode::kBodyTooLarge,
                "The object is larger than the server's limit of " +
                    std::to_string(context.options.transfer.max_object_bytes) + " bytes.");
  return call.request.body_stream;
}

// Scheme and authority for presigned URLs.
Result<std::string> UrlBase(const ApiContext& context, const Request& request) {
  if (!context.options.transfer.public_url.empty()) return context.options.transfer.public_url;
  const auto host = request.Header("Host");
  const bool valid =
      host && !host->empty() && std::ranges::all_of(*host, [](unsigned char c) {
        return std::isalnum(c) || c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
      });
  if (!valid)
    return Fail(ErrorCode::kBadRequest,
                "The request has no usable Host header to build URLs from; the server's "
                "--public-url sets it.");
  return "http://" + std::string(*host);
}

std::string FileUrl(const std::string& base, const UrlGrant& grant) {
  std::string url = base + "/v2.0/" + grant.package.project + "/files/";
  if (!grant.package.group.empty()) url += EncodePathSegment(grant.package.group) + "/";
  url += EncodePathSegment(grant.package.name);
  url += "?" + std::string(kUrlExpiresParam) + "=" + std::to_string(grant.expires_at_s) + "&" +
         std::string(kUrlSignatureParam) + "=" + grant.signature;
  return url;
}

void AddFileHeaders(Response& response, const PackageRecord& package, const std::string& etag) {
  response.headers.emplace_back("ETag", etag);
  response.headers.emplace_back("Last-Modified", HttpDate(package.update_time));
  response.headers.emplace_back("Accept-Ranges", "bytes");
  response.headers.emplace_back("Content-Disposition", ContentDisposition(package.name));
  response.headers.emplace_back("Repr-Digest", ReprDigest(package.sha256));
}

}  // namespace

Result<Response> PutResourceContent(const ApiContext& context, const Call& call) {
  const auto kind_text = call.Query("kind");
  if (!kind_text) return Fail(ErrorCode::kBadRequest, "kind is mandatory.");
  const auto kind = ParseKind(*kind_text);
  if (!kind)
    return Fail(ErrorCode::kBadRequest, "kind must be one of jar, pyFile, file, modelFile.");
  auto name = ResourceNameParam(context, call);
  if (!name) return std::unexpected(name.error());
  auto group = GroupParam(call);
  if (!group) return std::unexpected(group.error());
  auto expected = DeclaredSha(call);
  if (!expected) return std::unexpected(expected.error());
  StringSource buffered(call.request.body);
  auto body = BodyOf(context, call, buffered);
  if (!body) return std::unexpected(body.error());
  // A client that asks gets the XXH3-128 of the body received, to compare with its own.
  std::unique_ptr<BodyChecksum> checksum;
  if (call.request.Header("X-Want-Xxh3") && context.options.transfer.new_checksum)
    checksum = context.options.transfer.new_checksum();
  std::optional<ChecksummedSource> checksummed;
  if (checksum) *body = &checksummed.emplace(**body, *checksum);
  auto package = context.service.UploadBytes(
      DirectUpload{.project = call.Project(),
                   .owner = call.user,
                   .kind = *kind,
                   .group = std::move(*group),
                   .name = std::move(*name),
                   .max_bytes = context.options.transfer.max_object_bytes,
                   .expected_sha256 = std::move(*expected),
                   .signed_sha256 = call.signed_payload_sha256},
      **body);
  CountDirectUpload(context.options, package.has_value(), 1);
  if (!package) return std::unexpected(package.error());
  Response response = JsonAnswer(EncodePackage(*package));
  if (checksum) response.headers.emplace_back("X-Content-Xxh3", checksum->FinishHex());
  return response;
}

Result<Response> PutBlob(const ApiContext& context, const Call& call) {
  StringSource buffered(call.request.body);
  auto body = BodyOf(context, call, buffered);
  if (!body) return std::unexpected(body.error());
  auto sha = Sha256Hex::Parse(call.Param("sha256"), "The blob's sha256");
  if (!sha) return std::unexpected(sha.error());
  auto blob = context.service.StageBlob(*sha, context.options.transfer.max_object_bytes,
                                        call.signed_payload_sha256, **body);
  if (!blob) return std::unexpected(blob.error());
  return JsonAnswer(R"({"sha256":")" + blob->sha256 + R"(","size":)" + std::to_string(blob->size) +
                    "}");
}

Result<Response> ShowBlob(const ApiContext& context, const Call& call) {
  auto sha = Sha256Hex::Parse(call.Param("sha256"), "The blob's sha256");
  if (!sha) return std::unexpected(sha.error());
  auto stored = context.service.HasBlob(*sha);
  if (!stored) return std::unexpected(stored.error());
  if (!*stored) return Fail(ErrorCode::kNotFound, "The blob " + sha->str() + " is not stored.");
  return JsonAnswer(R"({"sha256":")" + sha->str() + R"("})");
}

Result<Response> CommitGroup(const ApiContext& context, const Call& call) {
  auto dto = DecodeGroupCommit(call.request.body);
  if (!dto) return std::unexpected(dto.error());
  // The decoder checked the names as written; the store keeps them in NFC.
  for (auto& package : dto->packages) {
    auto name = ParseResourceNameIn(context, package.name.str());
    if (!name) return std::unexpected(name.error());
    package.name = std::move(*name);
  }
  auto group = context.service.CommitStaged(call.Project(), call.user, dto->group, dto->packages);
  CountDirectUpload(context.options, group.has_value(), dto->packages.size());
  if (!group) return std::unexpected(group.error());
  return JsonAnswer(EncodeGroup(*group));
}

Result<Response> CreateUrls(const ApiContext& context, const Call& call) {
  auto dto = DecodeUrlsRequest(call.request.body);
  if (!dto) return std::unexpected(dto.error());
  auto base = UrlBase(context, call.request);
  if (!base) return std::unexpected(base.error());
  if (context.grants == nullptr)
    return Fail(ErrorCode::kNotSupported, "This server does not sign URLs.");
  if (dto->resource_names) {
    for (auto& raw : *dto->resource_names) {
      auto name = ParseResourceNameIn(context, raw);
      if (!name) return std::unexpected(name.error());
      raw = name->str();
    }
  }
  auto grants = context.grants->Grant(GrantRequest{.project = call.Project().str(),
                                                   .group = dto->group,
                                                   .names = dto->resource_names,
                                                   .expires_in_s = dto->expires_in});
  if (!grants) return std::unexpected(grants.error());
  std::vector<SignedUrl> urls;
  for (auto& grant : *grants) {
    std::string url = FileUrl(*base, grant);
    urls.push_back(SignedUrl{std::move(grant), std::move(url)});
  }
  return JsonAnswer(EncodeUrls(urls));
}

namespace {

// The package to download, or kNotFound while it has no stored bytes yet.
Result<PackageRecord> DownloadablePackage(const ApiContext& context, const PackageId& id) {
  auto package = context.service.Show(id);
  if (!package) return std::unexpected(package.error());
  if (package->sha256.empty())
    return Fail(ErrorCode::kNotFound,
                "The resource '" + id.name.str() + "' has no stored content yet.");
  return package;
}

Response RangeRefused(const PackageRecord& package, const Call& call) {
  Response refused = ErrorResponse(
      Error{ErrorCode::kRangeNotSatisfiable,
            "The range is outside the package's " + std::to_string(package.size) + " bytes."},
      call.request.request_id);
  refused.headers.emplace_back("Content-Range", "bytes */" + std::to_string(package.size));
  return refused;
}

// The body of `response`: the whole package, or the satisfiable `range` of it (206).
Result<Response> WithBody(const ApiContext& context, const PackageRecord& package,
                          RangeOutcome outcome, const ByteRange& range, Response response) {
  auto reader = context.service.OpenChecked(package);
  if (!reader) return std::unexpected(reader.error());
  if (outcome != RangeOutcome::kSatisfiable) {
    response.stream = std::move(*reader);
    return response;
  }
  if (auto sought = (*reader)->Seek(range.first); !sought) return std::unexpected(sought.error());
  response.status = 206;
  response.headers.emplace_back("Content-Range",
                                "bytes " + std::to_string(range.first) + "-" +
                                    std::to_string(range.first + range.length - 1) + "/" +
                                    std::to_string(package.size));
  response.stream = std::make_unique<RangeReader>(std::move(*reader), range.length);
  return response;
}

// GET|HEAD /files/...: the package under its own name, with ETag, 304 and Range.
Result<Response> Download(const ApiContext& context, const Call& call, const PackageId& id) {
  auto package = DownloadablePackage(context, id);
  if (!package) return std::unexpected(package.error());
  const std::string etag = "\"" + package->sha256 + "\"";
  Response response;
  response.content_type = "application/octet-stream";
  AddFileHeaders(response, *package, etag);
  if (auto match = call.request.Header("If-None-Match"); match && IfNoneMatchHits(*match, etag)) {
    response.status = 304;
    response.content_type = "";
    return response;
  }
  ByteRange range;
  auto outcome = ParseRange(call.request.Header("Range"), package->size, range);
  if (auto if_range = call.request.Header("If-Range"); if_range && *if_range != etag)
    outcome = RangeOutcome::kIgnore;  // the client's copy is stale: send it all
  if (outcome == RangeOutcome::kUnsatisfiable) return RangeRefused(*package, call);
  return WithBody(context, *package, outcome, range, std::move(response));
}

}  // namespace

Result<Response> DownloadFile(const ApiContext& context, const Call& call) {
  auto name = ResourceNameParam(context, call);
  if (!name) return std::unexpected(name.error());
  return Download(context, call, PackageId{call.Project(), std::nullopt, std::move(*name)});
}

Result<Response> DownloadGroupFile(const ApiContext& context, const Call& call) {
  auto decoded = PercentDecode(call.Param("group"));
  if (!decoded) return Fail(ErrorCode::kBadRequest, "The path is not validly percent-encoded.");
  auto group = GroupName::Parse(*decoded);
  if (!group) return std::unexpected(group.error());
  auto name = ResourceNameParam(context, call);
  if (!name) return std::unexpected(name.error());
  return Download(context, call, PackageId{call.Project(), std::move(*group), std::move(*name)});
}

}  // namespace dlipkg::api
