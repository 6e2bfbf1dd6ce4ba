// Direct uploads, staged group commits and presigned grants in the core, over the in-memory fakes.
#include <gtest/gtest.h>

#include <cstring>

#include "core/package_service.hpp"
#include "core/url_grants.hpp"
#include "testing/fakes.hpp"
#include "testing/settable_clock.hpp"

namespace dlipkg {
namespace {

// A body of `data` handed out in chunks of at most `chunk` bytes, failing after `fail_after`.
// A lending source lends views of `data` instead of copying (as the HTTP body does) and
// scribbles over the bytes it lent before, so a caller that kept a stale view stores wrong bytes.
class ChunkedSource final : public ByteSource {
 public:
  ChunkedSource(std::string data, std::size_t chunk, std::size_t fail_after = SIZE_MAX,
                bool lend = false)
      : data_(std::move(data)), chunk_(chunk), fail_after_(fail_after), lend_(lend) {}
  Result<std::size_t> Read(std::span<char> buffer) override {
    if (offset_ >= fail_after_) return Fail(ErrorCode::kBadRequest, "client went away");
    const std::size_t n = std::min({buffer.size(), chunk_, data_.size() - offset_});
    std::memcpy(buffer.data(), data_.data() + offset_, n);
    offset_ += n;
    return n;
  }
  Result<std::span<const char>> Lend(std::span<char> scratch) override {
    if (!lend_) return ByteSource::Lend(scratch);
    if (offset_ >= fail_after_) return Fail(ErrorCode::kBadRequest, "client went away");
    std::fill(data_.begin() + static_cast<std::ptrdiff_t>(lent_from_),
              data_.begin() + static_cast<std::ptrdiff_t>(offset_), '#');
    const std::size_t n = std::min({scratch.size(), chunk_, data_.size() - offset_});
    lent_from_ = offset_;
    offset_ += n;
    ++lends_;
    return std::span<const char>(data_.data() + lent_from_, n);
  }
  int lends() const { return lends_; }

 private:
  std::string data_;
  std::size_t chunk_;
  std::size_t fail_after_;
  bool lend_;
  std::size_t offset_ = 0;
  std::size_t lent_from_ = 0;
  int lends_ = 0;
};

// Signs with a fixed key; Verify recomputes. Rotating changes the key.
class FakeSigner final : public UrlSigner {
 public:
  Result<std::string> Sign(std::string_view grant) override {
    return key_ + ":" + std::to_string(std::hash<std::string_view>{}(grant));
  }
  Result<bool> Verify(std::string_view grant, std::string_view signature) override {
    return *Sign(grant) == signature;
  }
  std::string key_ = "k1";
};

class DirectTransferTest : public ::testing::Test {
 protected:
  DirectUpload Upload(std::string_view name, std::optional<std::string_view> group = "g") {
    return DirectUpload{
        .project = testing::Valid<ProjectId>("p1"),
        .owner = "alice",
        .kind = PackageKind::kJar,
        .group = group ? std::optional(testing::Valid<GroupName>(*group)) : std::nullopt,
        .name = testing::Valid<ResourceName>(name),
        .max_bytes = 1000};
  }
  static Sha256Hex Sha(std::string_view hex) { return Sha256Hex::Parse(hex, "sha256").value(); }
  static StagedPackage Staged(std::string_view name, std::string_view sha) {
    return StagedPackage{testing::Valid<ResourceName>(name), PackageKind::kPyFile, Sha(sha)};
  }

  testing::FakeMetadataStore metadata_;
  testing::FakeJobQueue jobs_{metadata_};
  testing::FakeBlobStore blobs_;
  testing::FakeFetcher fetcher_;
  testing::SettableClock clock_;
  testing::RecordingEventSink events_;
  BlobKeeper keeper_{metadata_, blobs_, clock_, events_, "test"};
  WorkerPool pool_{2};
  PackageService service_{
      ServicePorts{metadata_, jobs_, blobs_, fetcher_, clock_, keeper_, pool_, events_}};
  FakeSigner signer_;
  UrlGrants grants_{metadata_, signer_, clock_, 3600};
};

TEST_F(DirectTransferTest, UploadBytesStreamsAndReplacesAtomically) {
  ChunkedSource first("first version", 3);
  auto a = service_.UploadBytes(Upload("lib.jar"), first);
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->size, 13);
  EXPECT_EQ(testing::ContentOf(service_, "p1", "g", "lib.jar"), "first version");
  ChunkedSource second("second", 4);
  ASSERT_TRUE(service_.UploadBytes(Upload("lib.jar"), second));
  EXPECT_EQ(testing::ContentOf(service_, "p1", "g", "lib.jar"), "second");
  EXPECT_EQ(blobs_.Count(), 1u);  // the first version's bytes were reclaimed
}

TEST_F(DirectTransferTest, UploadBytesStoresWhatALendingBodyLends) {
  ChunkedSource body("bytes lent, never copied", 5, SIZE_MAX, /*lend=*/true);
  auto stored = service_.UploadBytes(Upload("lib.jar"), body);
  ASSERT_TRUE(stored) << stored.error().message;
  EXPECT_EQ(testing::ContentOf(service_, "p1", "g", "lib.jar"), "bytes lent, never copied");
  EXPECT_GE(body.lends(), 5);  // the core took the lent views, not Read
}

TEST_F(DirectTransferTest, FailuresLeaveNothingStored) {
  ChunkedSource big(std::string(1001, 'x'), 100);
  EXPECT_EQ(service_.UploadBytes(Upload("a.jar"), big).error().code, ErrorCode::kBodyTooLarge);
  ChunkedSource cut("abcdef", 2, 4);
  EXPECT_EQ(service_.UploadBytes(Upload("a.jar"), cut).error().code, ErrorCode::kBadRequest);
  auto declared = Upload("a.jar");
  declared.expected_sha256 = Sha(std::string(64, '0'));
  ChunkedSource body("abc", 10);
  EXPECT_EQ(service_.UploadBytes(declared, body).error().code, ErrorCode::kBadRequest);
  auto signed_for_other = Upload("a.jar");
  signed_for_other.signed_sha256 = Sha(std::string(64, '1'));
  ChunkedSource body2("abc", 10);
  EXPECT_EQ(service_.UploadBytes(signed_for_other, body2).error().code,
            ErrorCode::kUnauthenticated);
  EXPECT_EQ(blobs_.Count(), 0u);
  EXPECT_FALSE(*metadata_.GetPackage("p1", "g", "a.jar"));
}

TEST_F(DirectTransferTest, CommitStagedIsAllOrNothing) {
  ChunkedSource a("aaa", 10);
  ASSERT_TRUE(service_.UploadBytes(Upload("seed.jar"), a));
  const std::string sha_a = (*metadata_.GetPackage("p1", "g", "seed.jar"))->sha256;
  EXPECT_TRUE(*service_.HasBlob(Sha(sha_a)));
  EXPECT_FALSE(*service_.HasBlob(Sha(std::string(64, 'e'))));
  ChunkedSource wrong("not it", 10);
  EXPECT_EQ(service_.StageBlob(Sha(std::string(64, 'e')), 100, std::nullopt, wrong).error().code,
            ErrorCode::kBadRequest);

  const auto p1 = testing::Valid<ProjectId>("p1");
  const auto g = testing::Valid<GroupName>("g");
  auto missing = service_.CommitStaged(
      p1, "alice", g, {Staged("x.py", sha_a), Staged("y.py", std::string(64, 'e'))});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kBadRequest);
  EXPECT_EQ((*metadata_.GetGroup("p1", "g"))->packages.size(), 1u);  // unchanged

  auto duplicate =
      service_.CommitStaged(p1, "alice", g, {Staged("x.py", sha_a), Staged("x.py", sha_a)});
  ASSERT_FALSE(duplicate);
  EXPECT_EQ(duplicate.error().code, ErrorCode::kBadRequest);

  auto done = service_.CommitStaged(p1, "alice", g, {Staged("x.py", sha_a)});
  ASSERT_TRUE(done) << done.error().message;
  ASSERT_EQ(done->packages.size(), 1u);
  EXPECT_EQ(done->packages[0].name, "x.py");
  EXPECT_EQ(done->packages[0].size, 3);
}

TEST_F(DirectTransferTest, GrantsAreCheckedForPackageExpiryAndKey) {
  ChunkedSource a("aaa", 10);
  ASSERT_TRUE(service_.UploadBytes(Upload("a.jar"), a));
  auto grants = grants_.Grant(GrantRequest{.project = "p1", .group = "g", .expires_in_s = 60});
  ASSERT_TRUE(grants) << grants.error().message;
  ASSERT_EQ(grants->size(), 1u);
  const auto& grant = grants->front();
  const std::string expires = std::to_string(grant.expires_at_s);
  EXPECT_EQ(grant.expires_at_s, clock_.NowMs() / 1000 + 60);
  EXPECT_TRUE(grants_.Check("p1", "g", "a.jar", expires, grant.signature));
  EXPECT_EQ(grants_.Check("p1", "g", "b.jar", expires, grant.signature).error().code,
            ErrorCode::kForbidden);
  EXPECT_EQ(grants_.Check("p1", "g", "a.jar", "12x", grant.signature).error().code,
            ErrorCode::kForbidden);
  // The cap, and expiry by the injected clock.
  auto capped = grants_.Grant(GrantRequest{.project = "p1", .group = "g", .expires_in_s = 1 << 30});
  EXPECT_EQ(capped->front().expires_at_s, clock_.NowMs() / 1000 + 3600);
  clock_.Advance(std::chrono::milliseconds(61'000));
  EXPECT_EQ(grants_.Check("p1", "g", "a.jar", expires, grant.signature).error().code,
            ErrorCode::kForbidden);
  signer_.key_ = "k2";
  auto fresh = grants_.Grant(GrantRequest{.project = "p1", .group = "g"});
  EXPECT_FALSE(grants_.Check("p1", "g", "a.jar", std::to_string(capped->front().expires_at_s),
                             capped->front().signature));
  EXPECT_TRUE(grants_.Check("p1", "g", "a.jar", std::to_string(fresh->front().expires_at_s),
                            fresh->front().signature));
  EXPECT_EQ(grants_.Grant(GrantRequest{.project = "p1", .group = "none"}).error().code,
            ErrorCode::kNotFound);
  EXPECT_EQ(grants_.Grant(GrantRequest{.project = "p1"}).error().code, ErrorCode::kBadRequest);
}

}  // namespace
}  // namespace dlipkg
