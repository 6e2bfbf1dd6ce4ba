// Contract of BlobStore (ports/blob_store.hpp), one suite run against every backend: the file
// system (a temp dir), the unit tests' in-memory fake, and S3 (Swift + s3api started by
// scripts/test.sh, reached through DLIPKG_TEST_S3_ENDPOINT, _ACCESS_KEY and _SECRET_KEY). Without
// them the S3 cases fail, unless DLIPKG_TEST_NO_S3=1 says the developer has no Swift. Each test
// gets a fresh, empty store.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <ostream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "adapters/blobs/fs_blob_store.hpp"
#include "adapters/blobs/s3_blob_store.hpp"
#include "adapters/common/sha256.hpp"
#include "ports/blob_store.hpp"
#include "testing/fakes.hpp"

namespace dlipkg {
namespace {

namespace fs = std::filesystem;

const std::string kAbcHash = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr std::int64_t kPartBytes = 5LL << 20;  // S3's smallest, so 50 MiB is ten parts

std::string Sha256HexOf(std::string_view bytes) {
  Sha256Hasher hasher;
  hasher.Update(bytes);
  return hasher.FinishHex();
}

// ---- Backends ----

class BlobBackend {
 public:
  virtual ~BlobBackend() = default;
  virtual BlobStore& Store() = 0;
  // Temporaries in storage, whatever their age: temp files, tmp/ objects, multipart uploads.
  virtual std::size_t Temporaries() = 0;
  // Writes a temporary as a crashed writer would leave it.
  virtual void LeaveCrashedTemporary() = 0;
};

struct BackendFactory {
  std::string name;
  std::function<std::unique_ptr<BlobBackend>()> make;
};

class FsBackend final : public BlobBackend {
 public:
  FsBackend() {
    std::string pattern = (fs::temp_directory_path() / "dlipkg-blob-contract-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    root_ = pattern;
    auto store = FsBlobStore::Open(root_);
    if (!store) throw std::runtime_error(store.error().message);
    store_ = std::move(*store);
  }
  ~FsBackend() override {
    store_.reset();
    std::error_code ignored;
    fs::remove_all(root_, ignored);
  }
  BlobStore& Store() override { return *store_; }
  std::size_t Temporaries() override {
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(root_ / "tmp"), {}));
  }
  void LeaveCrashedTemporary() override {
    fs::create_directories(root_ / "tmp" / "odd-dir");
    std::ofstream(root_ / "tmp" / "crashed.part") << "leftover";
  }

 private:
  fs::path root_;
  std::unique_ptr<FsBlobStore> store_;
};

// The in-memory fake the unit tests of core and api use: held to the same contract, so that
// what those tests learn from it is true of the real stores.
class FakeBackend final : public BlobBackend {
 public:
  BlobStore& Store() override { return store_; }
  std::size_t Temporaries() override { return store_.Temporaries(); }
  void LeaveCrashedTemporary() override { store_.LeaveCrashedTemporary(); }

 private:
  testing::FakeBlobStore store_;
};

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

// Swift from scripts/test.sh, a bucket of the tests' own, a fresh prefix per store.
S3BlobStoreOptions TestS3Options() {
  const std::string endpoint = Env("DLIPKG_TEST_S3_ENDPOINT");
  if (endpoint.empty())
    throw std::runtime_error(
        "DLIPKG_TEST_S3_ENDPOINT is not set: run scripts/test.sh (it starts Swift), or set "
        "DLIPKG_TEST_NO_S3=1 to leave S3 out");
  return S3BlobStoreOptions{.store = {.name = "test",
                                      .endpoint = endpoint,
                                      .access_key = Env("DLIPKG_TEST_S3_ACCESS_KEY"),
                                      .secret_key = Env("DLIPKG_TEST_S3_SECRET_KEY"),
                                      .buckets = {"*"}},
                            .bucket = "dlipkg-contract",
                            .prefix = "run-" + std::to_string(std::random_device{}()) + "/t",
                            .part_bytes = kPartBytes,
                            .create_bucket = true};
}

class S3Backend final : public BlobBackend {
 public:
  explicit S3Backend(S3BlobStoreOptions options = TestS3Options()) {
    auto store = S3BlobStore::Open(options);
    if (!store) throw std::runtime_error(store.error().message);
    store_ = std::move(*store);
  }
  BlobStore& Store() override { return *store_; }
  std::size_t Temporaries() override {
    auto count = store_->CountTemporaries();
    if (!count) throw std::runtime_error(count.error().message);
    return *count;
  }
  // A writer past its first part that never commits nor gets destroyed: its multipart upload
  // stays open, as after a kill -9.
  void LeaveCrashedTemporary() override {
    auto writer = store_->Create();
    if (!writer || !(*writer)->Write(std::string(kPartBytes, 'x')))
      throw std::runtime_error("cannot start a writer");
    crashed_.push_back(std::move(*writer));
  }
  ~S3Backend() override {
    // Never destroyed, on purpose ("crashed"), but kept reachable from a static, so that
    // LeakSanitizer (scripts/sanitize.sh) does not report the test's own leak.
    static auto* const crashed_for_ever = new std::vector<std::unique_ptr<BlobWriter>>();
    for (auto& writer : crashed_) crashed_for_ever->push_back(std::move(writer));
    if (store_) {
      (void)store_->SweepTemporaries(std::chrono::milliseconds(0));
      if (auto listed = store_->List())
        for (const std::string& key : *listed) (void)store_->Remove(key);
    }
  }

 private:
  std::unique_ptr<S3BlobStore> store_;
  std::vector<std::unique_ptr<BlobWriter>> crashed_;
};

void PrintTo(const BackendFactory& backend, std::ostream* out) { *out << backend.name; }

std::vector<BackendFactory> Backends() {
  std::vector<BackendFactory> backends = {
      {"FileSystem", [] { return std::make_unique<FsBackend>(); }},
      {"InMemoryFake", [] { return std::make_unique<FakeBackend>(); }}};
  if (Env("DLIPKG_TEST_NO_S3") != "1")
    backends.push_back({"S3", [] { return std::make_unique<S3Backend>(); }});
  return backends;
}

// ---- The suite ----

class BlobStoreContract : public ::testing::TestWithParam<BackendFactory> {
 protected:
  void SetUp() override {
    try {
      backend_ = GetParam().make();
    } catch (const std::exception& e) {
      FAIL() << GetParam().name << " backend unavailable: " << e.what();
    }
  }

  BlobStore& Store() { return backend_->Store(); }

  BlobInfo Put(std::string_view bytes) {
    auto writer = Store().Create();
    EXPECT_TRUE(writer);
    if (!writer) return {};
    EXPECT_TRUE((*writer)->Write(bytes));
    auto info = (*writer)->Commit();
    EXPECT_TRUE(info) << info.error().message;
    return info.value_or(BlobInfo{});
  }

  std::string ReadAll(const std::string& sha256, std::size_t buffer_bytes = 4096) {
    auto reader = Store().Open(sha256);
    EXPECT_TRUE(reader) << reader.error().message;
    if (!reader) return {};
    std::string content;
    std::vector<char> buffer(buffer_bytes);
    for (;;) {
      auto n = (*reader)->Read(buffer);
      EXPECT_TRUE(n) << n.error().message;
      if (!n || *n == 0) return content;
      content.append(buffer.data(), *n);
    }
  }

  std::unique_ptr<BlobBackend> backend_;
};

TEST_P(BlobStoreContract, CommittedBlobReadsBackUnderItsHash) {
  const BlobInfo info = Put("abc");
  EXPECT_EQ(info.sha256, kAbcHash);
  EXPECT_EQ(info.size, 3);
  auto reader = Store().Open(kAbcHash);
  ASSERT_TRUE(reader) << reader.error().message;
  EXPECT_EQ((*reader)->Size(), 3);
  EXPECT_EQ(ReadAll(kAbcHash), "abc");
  EXPECT_EQ(Store().Exists(kAbcHash), true);
}

TEST_P(BlobStoreContract, ReaderHandsOutBytesInPiecesThenZero) {
  Put("abcdefg");
  auto reader = Store().Open(Sha256HexOf("abcdefg"));
  ASSERT_TRUE(reader);
  std::vector<char> buffer(3);
  std::string seen;
  for (int i = 0; i < 3; ++i) {
    auto n = (*reader)->Read(buffer);
    ASSERT_TRUE(n);
    seen.append(buffer.data(), *n);
  }
  EXPECT_EQ(seen, "abcdefg");
  EXPECT_EQ((*reader)->Read(buffer), 0u);
  EXPECT_EQ((*reader)->Read(buffer), 0u);
  EXPECT_EQ((*reader)->Size(), 7);
}

TEST_P(BlobStoreContract, EmptyBlobIsAValidBlob) {
  const BlobInfo info = Put("");
  EXPECT_EQ(info.sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(info.size, 0);
  EXPECT_EQ(ReadAll(info.sha256), "");
}

TEST_P(BlobStoreContract, SameBytesTwiceMakeOneBlob) {
  EXPECT_EQ(Put("abc").sha256, Put("abc").sha256);
  auto listed = Store().List();
  ASSERT_TRUE(listed);
  EXPECT_EQ(*listed, std::vector<std::string>{kAbcHash});
  EXPECT_EQ(backend_->Temporaries(), 0u);
}

TEST_P(BlobStoreContract, UncommittedWriterLeavesNothing) {
  {
    auto writer = Store().Create();
    ASSERT_TRUE(writer);
    ASSERT_TRUE((*writer)->Write(std::string_view("half a package")));
    ASSERT_TRUE((*writer)->Write(std::string(kPartBytes + 1, 'p')));  // past one part
  }
  EXPECT_EQ(backend_->Temporaries(), 0u);
  auto listed = Store().List();
  ASSERT_TRUE(listed);
  EXPECT_TRUE(listed->empty());
}

TEST_P(BlobStoreContract, SpentWriterRefusesMoreWork) {
  auto writer = Store().Create();
  ASSERT_TRUE(writer);
  ASSERT_TRUE((*writer)->Commit());
  EXPECT_FALSE((*writer)->Write(std::string_view("x")));
  EXPECT_FALSE((*writer)->Commit());
}

TEST_P(BlobStoreContract, SweepRemovesLeftoverTemporariesAndKeepsBlobs) {
  backend_->LeaveCrashedTemporary();
  Put("abc");
  ASSERT_GT(backend_->Temporaries(), 0u);
  auto swept = Store().SweepTemporaries(std::chrono::milliseconds(0));
  ASSERT_TRUE(swept) << swept.error().message;
  EXPECT_GT(*swept, 0u);
  EXPECT_EQ(backend_->Temporaries(), 0u);
  EXPECT_EQ(Store().Exists(kAbcHash), true);
}

TEST_P(BlobStoreContract, InvalidKeysAreRefusedBeforeReachingStorage) {
  const std::string bad_keys[] = {
      "",
      "abc",
      "../../secret",
      std::string(64, 'A'),
      std::string(63, 'a') + "/",
      "../" + std::string(61, 'a'),
      std::string(65, 'a'),
      std::string(63, 'a') + "?",
  };
  for (const std::string& key : bad_keys) {
    SCOPED_TRACE(key);
    auto opened = Store().Open(key);
    ASSERT_FALSE(opened);
    EXPECT_EQ(opened.error().code, ErrorCode::kNotFound);
    EXPECT_EQ(Store().Exists(key), false);
    auto removed = Store().Remove(key);
    ASSERT_FALSE(removed);
    EXPECT_EQ(removed.error().code, ErrorCode::kBadRequest);
  }
}

TEST_P(BlobStoreContract, MissingBlobIsNotFound) {
  auto opened = Store().Open(kAbcHash);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(Store().Exists(kAbcHash), false);
}

TEST_P(BlobStoreContract, ListNamesEveryCommittedBlob) {
  std::vector<std::string> expected = {Put("one").sha256, Put("two").sha256, Put("three").sha256};
  backend_->LeaveCrashedTemporary();  // not a blob
  auto listed = Store().List();
  ASSERT_TRUE(listed);
  std::ranges::sort(expected);
  std::ranges::sort(*listed);
  EXPECT_EQ(*listed, expected);
}

TEST_P(BlobStoreContract, RemoveIsIdempotent) {
  Put("abc");
  EXPECT_TRUE(Store().Remove(kAbcHash));
  EXPECT_EQ(Store().Exists(kAbcHash), false);
  EXPECT_TRUE(Store().Remove(kAbcHash));
  auto listed = Store().List();
  ASSERT_TRUE(listed);
  EXPECT_TRUE(listed->empty());
}

// The batch hooks (BlobKeeper::CommitPinnedAll): BeginSeal on each writer, then Seal, Publish
// and SyncPublished on each, commit every writer as Commit would, whatever was written after
// BeginSeal, a copy of bytes already stored included.
TEST_P(BlobStoreContract, BatchHooksInTheirOrderCommitEveryWriter) {
  Put("abc");  // already stored: the batch's copy of it must leave one blob
  const std::vector<std::string> contents = {"first", "abc", std::string(kPartBytes + 7, 's'), ""};
  std::vector<std::unique_ptr<BlobWriter>> writers;
  for (const auto& content : contents) {
    auto writer = Store().Create();
    ASSERT_TRUE(writer) << writer.error().message;
    ASSERT_TRUE((*writer)->Write(std::string_view(content).substr(0, content.size() / 2)));
    writers.push_back(std::move(*writer));
  }
  for (std::size_t i = 0; i < writers.size(); ++i) {
    ASSERT_TRUE(writers[i]->BeginSeal());
    // Writing after BeginSeal is allowed: Seal waits for these bytes too.
    ASSERT_TRUE(writers[i]->Write(std::string_view(contents[i]).substr(contents[i].size() / 2)));
  }
  std::vector<BlobInfo> sealed;
  for (auto& writer : writers) {
    auto info = writer->Seal();
    ASSERT_TRUE(info) << info.error().message;
    sealed.push_back(*info);
  }
  for (std::size_t i = 0; i < writers.size(); ++i) {
    EXPECT_EQ(sealed[i].sha256, Sha256HexOf(contents[i]));
    EXPECT_EQ(sealed[i].size, static_cast<std::int64_t>(contents[i].size()));
    auto published = writers[i]->Publish();
    ASSERT_TRUE(published) << published.error().message;
    EXPECT_EQ(published->sha256, sealed[i].sha256);
    EXPECT_EQ(published->size, sealed[i].size);
  }
  for (auto& writer : writers) ASSERT_TRUE(writer->SyncPublished());
  for (const auto& content : contents) {
    SCOPED_TRACE(content.substr(0, 8));
    EXPECT_EQ(Store().Exists(Sha256HexOf(content)), true);
    EXPECT_TRUE(ReadAll(Sha256HexOf(content), 1 << 20) == content);
  }
  auto listed = Store().List();
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->size(), contents.size());
  EXPECT_EQ(backend_->Temporaries(), 0u);
  // Published writers are spent.
  for (auto& writer : writers) {
    EXPECT_FALSE(writer->Write(std::string_view("more")));
    EXPECT_FALSE(writer->Commit());
  }
}

// A writer dropped after BeginSeal or Seal, before Publish, leaves no blob and no temporary.
TEST_P(BlobStoreContract, WritersDroppedBeforePublishLeaveNothing) {
  {
    auto begun = Store().Create();
    ASSERT_TRUE(begun);
    ASSERT_TRUE((*begun)->Write(std::string_view("begun only")));
    ASSERT_TRUE((*begun)->BeginSeal());
    auto sealed = Store().Create();
    ASSERT_TRUE(sealed);
    ASSERT_TRUE((*sealed)->Write(std::string_view("sealed only")));
    ASSERT_TRUE((*sealed)->Seal());
  }
  EXPECT_EQ(backend_->Temporaries(), 0u);
  EXPECT_EQ(Store().Exists(Sha256HexOf("begun only")), false);
  EXPECT_EQ(Store().Exists(Sha256HexOf("sealed only")), false);
  auto listed = Store().List();
  ASSERT_TRUE(listed);
  EXPECT_TRUE(listed->empty());
}

// 50 MiB in 1 MiB chunks: ten parts of a multipart upload on S3, seen in progress halfway.
TEST_P(BlobStoreContract, LargeBlobStreamsThroughIntact) {
  constexpr std::size_t kChunk = 1 << 20;
  constexpr int kChunks = 50;
  std::string chunk(kChunk, '\0');
  Sha256Hasher expected;
  auto writer = Store().Create();
  ASSERT_TRUE(writer);
  std::size_t temporaries_halfway = 0;
  for (int i = 0; i < kChunks; ++i) {
    std::ranges::generate(chunk, [n = i * 7919u]() mutable { return static_cast<char>(n++ * 31); });
    expected.Update(chunk);
    ASSERT_TRUE((*writer)->Write(chunk));
    if (i == kChunks / 2) temporaries_halfway = backend_->Temporaries();
  }
  EXPECT_EQ(temporaries_halfway, 1u);  // one temp file, or one multipart upload in progress
  auto info = (*writer)->Commit();
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->size, static_cast<std::int64_t>(kChunk) * kChunks);
  const std::string expected_hash = expected.FinishHex();
  EXPECT_EQ(info->sha256, expected_hash);
  EXPECT_EQ(backend_->Temporaries(), 0u);

  auto reader = Store().Open(info->sha256);
  ASSERT_TRUE(reader);
  EXPECT_EQ((*reader)->Size(), info->size);
  Sha256Hasher read_back;
  std::int64_t read = 0;
  std::vector<char> buffer(kChunk - 7);  // not a divisor of any chunk size the stores use
  for (auto n = (*reader)->Read(buffer); n && *n > 0; n = (*reader)->Read(buffer)) {
    read_back.Update(std::span(buffer).first(*n));
    read += static_cast<std::int64_t>(*n);
  }
  EXPECT_EQ(read, info->size);
  EXPECT_EQ(read_back.FinishHex(), expected_hash);

  // The same bytes again: deduplicated, and no temporary left behind.
  auto again = Store().Create();
  ASSERT_TRUE(again);
  for (int i = 0; i < kChunks; ++i) {
    std::ranges::generate(chunk, [n = i * 7919u]() mutable { return static_cast<char>(n++ * 31); });
    ASSERT_TRUE((*again)->Write(chunk));
  }
  auto second = (*again)->Commit();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->sha256, expected_hash);
  EXPECT_EQ(backend_->Temporaries(), 0u);
  EXPECT_EQ(Store().List()->size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Backends, BlobStoreContract, ::testing::ValuesIn(Backends()),
                         [](const auto& info) { return info.param.name; });

// ---- S3 specifics: the size limit, credentials, options ----

class S3BlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Env("DLIPKG_TEST_NO_S3") == "1") GTEST_SKIP() << "DLIPKG_TEST_NO_S3=1";
  }
};

// Beyond the limit a blob could not reach its content key (one CopyObject): refused on the
// write that crosses it, and what was uploaded is aborted at once.
TEST_F(S3BlobStoreTest, BlobOverTheSizeLimitIsRefusedAndLeavesNothing) {
  S3BlobStoreOptions options = TestS3Options();
  options.max_object_bytes = 2 * kPartBytes;
  S3Backend backend(options);
  auto writer = backend.Store().Create();
  ASSERT_TRUE(writer);
  const std::string part(kPartBytes, 'c');
  ASSERT_TRUE((*writer)->Write(part));
  ASSERT_TRUE((*writer)->Write(part));
  auto crossed = (*writer)->Write(std::string_view("x"));
  ASSERT_FALSE(crossed);
  EXPECT_EQ(crossed.error().code, ErrorCode::kInternal);
  EXPECT_EQ(backend.Temporaries(), 0u);
  EXPECT_FALSE((*writer)->Commit());
}

TEST_F(S3BlobStoreTest, WrongSecretFailsAtOpenWithoutShowingIt) {
  S3BlobStoreOptions options = TestS3Options();
  options.store.secret_key = "not-the-secret";
  options.create_bucket = false;
  auto store = S3BlobStore::Open(options);
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kInternal);
  EXPECT_FALSE(store.error().retryable);
  EXPECT_NE(store.error().message.find("blob store failure"), std::string::npos);
  EXPECT_EQ(store.error().message.find("not-the-secret"), std::string::npos);
}

TEST_F(S3BlobStoreTest, UnreachableStoreIsARetryableFailure) {
  S3BlobStoreOptions options = TestS3Options();
  options.store.endpoint = "http://127.0.0.1:1";
  auto store = S3BlobStore::Open(options);
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kInternal);
  EXPECT_TRUE(store.error().retryable);
}

TEST_F(S3BlobStoreTest, BadPrefixOrPartSizeIsRefusedBeforeAnyRequest) {
  S3BlobStoreOptions options = TestS3Options();
  options.prefix = "a/../b";
  EXPECT_EQ(S3BlobStore::Open(options).error().code, ErrorCode::kBadRequest);
  options = TestS3Options();
  options.part_bytes = 1 << 20;
  EXPECT_EQ(S3BlobStore::Open(options).error().code, ErrorCode::kBadRequest);
}

}  // namespace
}  // namespace dlipkg
