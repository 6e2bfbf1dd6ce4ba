#include "adapters/blobs/fs_blob_store.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "adapters/common/sha256.hpp"
#include "testing/temp_dir.hpp"

// File-system specifics: the directory layout, files below the root. What every BlobStore must
// do is in tests/contract/blob_store_contract.cpp, run against this store too.

namespace dlipkg {
namespace {

namespace fs = std::filesystem;

// A std::string: a string literal would be ambiguous between the static and the member Open.
const std::string kAbcHash = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

// Returns once the wall clock is 50 ms past the file's last change (mtime or ctime), waiting
// at most 5 s.
void SettleFile(const fs::path& file) {
  for (int i = 0; i < 5000; ++i) {
    struct stat st {};
    timespec now{};
    if (::stat(file.c_str(), &st) != 0 || ::clock_gettime(CLOCK_REALTIME, &now) != 0) return;
    auto ns = [](const timespec& t) { return t.tv_sec * 1'000'000'000LL + t.tv_nsec; };
    if (ns(now) - std::max(ns(st.st_mtim), ns(st.st_ctim)) >= 50'000'000) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

class FsBlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = FsBlobStore::Open(dir_.path());
    ASSERT_TRUE(opened) << opened.error().message;
    store_ = std::move(*opened);
  }

  BlobInfo Put(std::string_view bytes) {
    auto writer = store_->Create();
    EXPECT_TRUE(writer);
    EXPECT_TRUE((*writer)->Write(bytes));
    auto info = (*writer)->Commit();
    EXPECT_TRUE(info) << info.error().message;
    return info.value_or(BlobInfo{});
  }

  std::string ReadAll(const std::string& sha256) {
    auto reader = store_->Open(sha256);
    EXPECT_TRUE(reader) << reader.error().message;
    std::string content;
    std::vector<char> buffer(4096);
    for (;;) {
      auto n = (*reader)->Read(buffer);
      EXPECT_TRUE(n);
      if (!n || *n == 0) return content;
      content.append(buffer.data(), *n);
    }
  }

  std::size_t FilesBelow(const fs::path& dir) {
    return static_cast<std::size_t>(std::ranges::count_if(
        fs::recursive_directory_iterator(dir), [](const auto& e) { return e.is_regular_file(); }));
  }

  test::TempDir dir_;
  std::unique_ptr<FsBlobStore> store_;
};

TEST_F(FsBlobStoreTest, CommittedBlobLandsInItsFanOutDirectory) {
  const BlobInfo info = Put("abc");
  EXPECT_EQ(info.sha256, kAbcHash);
  EXPECT_EQ(info.size, 3);
  EXPECT_TRUE(fs::is_regular_file(dir_.path() / "blobs" / "ba" / kAbcHash));
  auto reader = store_->Open(kAbcHash);
  ASSERT_TRUE(reader);
  EXPECT_EQ((*reader)->Size(), 3);
  EXPECT_EQ(ReadAll(kAbcHash), "abc");
  EXPECT_EQ(store_->Exists(kAbcHash), true);
}

TEST_F(FsBlobStoreTest, SameBytesTwiceMakeOneFile) {
  EXPECT_EQ(Put("abc").sha256, Put("abc").sha256);
  EXPECT_EQ(FilesBelow(dir_.path() / "blobs"), 1u);
  EXPECT_EQ(FilesBelow(dir_.path() / "tmp"), 0u);
}

TEST_F(FsBlobStoreTest, SealedWriterTakesNoMoreBytesAndCommitsWhatItHad) {
  auto writer = store_->Create();
  ASSERT_TRUE(writer);
  ASSERT_TRUE((*writer)->Write(std::string_view("abc")));
  ASSERT_TRUE((*writer)->Seal());
  EXPECT_TRUE((*writer)->Seal());                    // idempotent
  EXPECT_EQ(FilesBelow(dir_.path() / "blobs"), 0u);  // durable, not yet published
  EXPECT_FALSE((*writer)->Write(std::string_view("more")));
  auto info = (*writer)->Commit();
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->sha256, kAbcHash);
  EXPECT_EQ(ReadAll(kAbcHash), "abc");
  EXPECT_EQ(FilesBelow(dir_.path() / "tmp"), 0u);
}

// Issue 15, bug 6: a blob file altered on disk was kept by every later commit of the genuine
// bytes, so downloads served the altered file for ever under the genuine hash.
TEST_F(FsBlobStoreTest, CommitReplacesAnAlteredBlobOfTheSameName) {
  const BlobInfo first = Put("abc");
  const fs::path file = dir_.path() / "blobs" / kAbcHash.substr(0, 2) / kAbcHash;
  for (const std::string altered : {"xyz", "abcd", ""}) {
    // An edit in the same clock tick as the commit could keep the file's ctime on kernels
    // without fine-grained timestamps, and the store trusts the file it just committed.
    SettleFile(file);
    dir_.WriteFile(fs::relative(file, dir_.path()).string(), altered);
    // Reads through the store refuse the altered bytes (kCorrupted); the file holds them.
    std::ifstream in(file, std::ios::binary);
    ASSERT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), altered);
    const BlobInfo again = Put("abc");
    EXPECT_EQ(again.sha256, first.sha256);
    EXPECT_EQ(ReadAll(kAbcHash), "abc") << "after the blob was altered to '" << altered << "'";
  }
  EXPECT_EQ(FilesBelow(dir_.path() / "tmp"), 0u);
}

// Issue 15: transient local failures (here EMFILE: no descriptor left) are marked retryable,
// so an async job retries them within its deadline instead of failing at once.
TEST_F(FsBlobStoreTest, RunningOutOfDescriptorsIsRetryable) {
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  std::vector<int> hogs;
  const int base = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(base, 0);
  hogs.push_back(base);
  rlimit tight = saved;
  tight.rlim_cur = 64;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);
  for (int fd; (fd = ::dup(base)) >= 0;) hogs.push_back(fd);  // every descriptor taken
  auto writer = store_->Create();
  for (int fd : hogs) ::close(fd);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  ASSERT_FALSE(writer);
  EXPECT_EQ(writer.error().code, ErrorCode::kInternal);
  EXPECT_TRUE(writer.error().retryable) << writer.error().message;
}

TEST_F(FsBlobStoreTest, RemovedDirectoriesAreMadeAgain) {
  fs::remove_all(dir_.path() / "tmp");
  fs::remove_all(dir_.path() / "blobs");
  EXPECT_EQ(Put("abc").sha256, kAbcHash);
  EXPECT_EQ(ReadAll(kAbcHash), "abc");
}

// Three contents whose blobs share one fan-out directory, and one whose blob goes elsewhere.
std::vector<std::string> SameFanOut(int count, std::string* elsewhere) {
  std::vector<std::string> same;
  std::string first_dir;
  for (int i = 0; same.size() < static_cast<std::size_t>(count) || elsewhere->empty(); ++i) {
    std::string content = "content " + std::to_string(i);
    Sha256Hasher hasher;
    hasher.Update(content);
    const std::string dir = hasher.FinishHex().substr(0, 2);
    if (first_dir.empty()) first_dir = dir;
    if (dir == first_dir && same.size() < static_cast<std::size_t>(count))
      same.push_back(content);
    else if (dir != first_dir && elsewhere->empty())
      *elsewhere = content;
  }
  return same;
}

// A batch's renames into one directory share its fsync: the first writer's sync covers the
// renames published before it began; a rename after it needs a sync of its own, and so does a
// rename into another directory.
TEST_F(FsBlobStoreTest, OneDirectorySyncCoversTheRenamesPublishedBeforeIt) {
  std::string elsewhere;
  const auto same = SameFanOut(3, &elsewhere);
  std::vector<std::unique_ptr<BlobWriter>> writers;
  for (const auto& content : {same[0], same[1], elsewhere, same[2]}) {
    auto writer = store_->Create();
    ASSERT_TRUE(writer);
    ASSERT_TRUE((*writer)->Write(std::string_view(content)));
    ASSERT_TRUE((*writer)->Seal());
    writers.push_back(std::move(*writer));
  }
  ASSERT_TRUE(writers[0]->Publish());
  ASSERT_TRUE(writers[1]->Publish());
  ASSERT_TRUE(writers[2]->Publish());
  const auto before = store_->DirectorySyncCount();
  ASSERT_TRUE(writers[0]->SyncPublished());
  EXPECT_EQ(store_->DirectorySyncCount(), before + 1);
  ASSERT_TRUE(writers[1]->SyncPublished());  // covered by writer 0's sync
  EXPECT_EQ(store_->DirectorySyncCount(), before + 1);
  ASSERT_TRUE(writers[2]->SyncPublished());  // another directory
  EXPECT_EQ(store_->DirectorySyncCount(), before + 2);
  ASSERT_TRUE(writers[3]->Publish());  // renamed after writer 0's sync began
  ASSERT_TRUE(writers[3]->SyncPublished());
  EXPECT_EQ(store_->DirectorySyncCount(), before + 3);
  for (const auto& content : {same[0], same[1], same[2], elsewhere}) {
    Sha256Hasher hasher;
    hasher.Update(content);
    EXPECT_EQ(ReadAll(hasher.FinishHex()), content);
  }
}

TEST_F(FsBlobStoreTest, UncommittedWriterLeavesNothing) {
  {
    auto writer = store_->Create();
    ASSERT_TRUE(writer);
    ASSERT_TRUE((*writer)->Write(std::string_view("half a package")));
  }
  EXPECT_EQ(FilesBelow(dir_.path()), 0u);
}

TEST_F(FsBlobStoreTest, SweepRemovesLeftoverTemporaries) {
  dir_.WriteFile("tmp/crashed.part", "leftover");
  fs::create_directories(dir_.path() / "tmp" / "odd-dir");
  Put("abc");
  auto swept = store_->SweepTemporaries(std::chrono::milliseconds(0));
  ASSERT_TRUE(swept);
  EXPECT_EQ(*swept, 2u);
  EXPECT_TRUE(fs::is_empty(dir_.path() / "tmp"));
  EXPECT_EQ(store_->Exists(kAbcHash), true);
}

// The periodic collector runs while uploads write their temporaries: only old ones go.
TEST_F(FsBlobStoreTest, ASweepWithAMinimumAgeKeepsYoungTemporaries) {
  dir_.WriteFile("tmp/old.part", "leftover");
  dir_.WriteFile("tmp/young.part", "in flight");
  const auto old_time = fs::file_time_type::clock::now() - std::chrono::hours(2);
  fs::last_write_time(dir_.path() / "tmp" / "old.part", old_time);
  auto swept = store_->SweepTemporaries(std::chrono::hours(1));
  ASSERT_TRUE(swept);
  EXPECT_EQ(*swept, 1u);
  EXPECT_FALSE(fs::exists(dir_.path() / "tmp" / "old.part"));
  EXPECT_TRUE(fs::exists(dir_.path() / "tmp" / "young.part"));
}

// Refusing keys is the contract suite's; here, that no refused key touched a file.
TEST_F(FsBlobStoreTest, InvalidKeysNeverBecomePaths) {
  dir_.WriteFile("secret", "do not touch");
  for (const std::string& key : {std::string("../../secret"), "../" + std::string(61, 'a')}) {
    EXPECT_FALSE(store_->Remove(key));
    EXPECT_FALSE(store_->Open(key));
  }
  EXPECT_TRUE(fs::exists(dir_.path() / "secret"));
}

TEST_F(FsBlobStoreTest, ListIgnoresStrayFiles) {
  std::vector<std::string> expected = {Put("one").sha256, Put("two").sha256, Put("three").sha256};
  dir_.WriteFile("blobs/zz/not-a-blob", "");
  auto listed = store_->List();
  ASSERT_TRUE(listed);
  std::ranges::sort(expected);
  std::ranges::sort(*listed);
  EXPECT_EQ(*listed, expected);
}

// --- downloads of blobs verified since their file last changed --------------------------------

// A blob written long enough ago that its timestamps cannot be "racy" (see VerifiedBlobs).
class FsVerifiedBlobTest : public FsBlobStoreTest {
 protected:
  // A committed blob, known to the store only from disk (as after a restart), its last change
  // settled past the clock tick, so the store has to hash it before it trusts it.
  std::string PutSettled(std::string_view bytes) {
    const std::string sha = PutAndSettle(bytes);
    Restart();
    return sha;
  }

  std::string PutAndSettle(std::string_view bytes) {
    const std::string sha = Put(bytes).sha256;
    Settle(sha);
    return sha;
  }

  // Waits on the file's own clock (bounded), not a fixed sleep: 50 ms past its last change,
  // its ctime (the commit's rename, which can come well after the last write under load), so
  // that a read now is past the store's racy margin and a following change gets a new ctime.
  void Settle(const std::string& sha) { SettleFile(PathOf(sha)); }

  // An altered blob is not offered as a region (it must be hashed), and its read is refused.
  void ExpectHashedAndRefused(const std::string& sha) {
    auto reader = store_->Open(sha);
    ASSERT_TRUE(reader);
    EXPECT_FALSE((*reader)->Region());
    std::vector<char> buffer(64);
    auto n = (*reader)->Read(buffer);
    ASSERT_FALSE(n);
    EXPECT_EQ(n.error().code, ErrorCode::kCorrupted);
  }

  // A new store on the same directory: what it trusts is kept in memory only.
  void Restart() {
    store_.reset();
    auto opened = FsBlobStore::Open(dir_.path());
    ASSERT_TRUE(opened) << opened.error().message;
    store_ = std::move(*opened);
  }

  fs::path PathOf(const std::string& sha) { return dir_.path() / "blobs" / sha.substr(0, 2) / sha; }

  // Flips one byte in place: same inode, same size, new ctime.
  void AlterInPlace(const std::string& sha) {
    const fs::path file = PathOf(sha);
    fs::permissions(file, fs::perms::owner_write, fs::perm_options::add);
    std::fstream stream(file, std::ios::in | std::ios::out | std::ios::binary);
    char first = 0;
    stream.get(first);
    stream.seekp(0);
    stream.put(static_cast<char>(first ^ 0x01));
  }
};

TEST_F(FsVerifiedBlobTest, AFirstFullReadIsHashedAndOffersNoRegion) {
  const std::string sha = PutSettled("abc");
  auto reader = store_->Open(sha);
  ASSERT_TRUE(reader);
  EXPECT_FALSE((*reader)->Region());  // must pass through Read, which hashes
}

TEST_F(FsVerifiedBlobTest, AfterAVerifiedReadTheUnchangedFileIsOfferedAsARegion) {
  const std::string sha = PutSettled("abc");
  EXPECT_EQ(ReadAll(sha), "abc");
  auto reader = store_->Open(sha);
  ASSERT_TRUE(reader);
  const auto region = (*reader)->Region();
  ASSERT_TRUE(region);
  EXPECT_GE(region->fd, 0);
  EXPECT_EQ(region->offset, 0);
  EXPECT_EQ(region->length, 3);
  EXPECT_TRUE((*reader)->ConfirmUnchanged());
  EXPECT_EQ(ReadAll(sha), "abc");
}

TEST_F(FsVerifiedBlobTest, AFileAlteredAfterVerificationIsHashedAgainAndRefused) {
  const std::string sha = PutSettled("abcdef");
  EXPECT_EQ(ReadAll(sha), "abcdef");
  AlterInPlace(sha);
  ExpectHashedAndRefused(sha);
}

TEST_F(FsVerifiedBlobTest, AFileAlteredWhileATrustedReaderIsOpenFailsItsLastBytes) {
  const std::string sha = PutSettled("abcdef");
  EXPECT_EQ(ReadAll(sha), "abcdef");
  auto sendfile_reader = store_->Open(sha);
  auto read_reader = store_->Open(sha);
  ASSERT_TRUE(sendfile_reader && read_reader);
  ASSERT_TRUE((*sendfile_reader)->Region());
  std::vector<char> buffer(2);
  ASSERT_TRUE((*read_reader)->Read(buffer));  // not the last bytes yet
  AlterInPlace(sha);
  auto confirmed = (*sendfile_reader)->ConfirmUnchanged();
  ASSERT_FALSE(confirmed);
  EXPECT_EQ(confirmed.error().code, ErrorCode::kCorrupted);
  std::vector<char> rest(64);
  auto n = (*read_reader)->Read(rest);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error().code, ErrorCode::kCorrupted);
}

TEST_F(FsVerifiedBlobTest, ARangeIsOfferedAsARegionWithoutVerification) {
  const std::string sha = PutSettled("abcdef");
  auto reader = store_->Open(sha);
  ASSERT_TRUE(reader);
  ASSERT_TRUE((*reader)->Seek(2));
  const auto region = (*reader)->Region();
  ASSERT_TRUE(region);
  EXPECT_EQ(region->offset, 2);
  EXPECT_EQ(region->length, 4);
}

TEST_F(FsVerifiedBlobTest, ARemovedBlobIsForgottenAndAFileLaterPutInItsPlaceIsHashed) {
  const std::string sha = PutSettled("abc");
  EXPECT_EQ(ReadAll(sha), "abc");
  ASSERT_TRUE(store_->Remove(sha));
  std::ofstream(PathOf(sha), std::ios::binary) << "abc";  // not through the store
  auto reader = store_->Open(sha);
  ASSERT_TRUE(reader);
  EXPECT_FALSE((*reader)->Region());
}

// The bytes of a commit were hashed as they were written, so the committed file is trusted at
// once: the first download after an upload is sent like any verified one.
TEST_F(FsVerifiedBlobTest, ABlobJustCommittedIsTrustedWithoutARead) {
  const std::string sha = Put("abcdef").sha256;
  auto reader = store_->Open(sha);
  ASSERT_TRUE(reader);
  const auto region = (*reader)->Region();
  ASSERT_TRUE(region);
  EXPECT_EQ(region->length, 6);
  EXPECT_TRUE((*reader)->ConfirmUnchanged());
}

TEST_F(FsVerifiedBlobTest, ACommitOfBytesAlreadyStoredTrustsTheCopyItChecked) {
  const std::string sha = PutSettled("abcdef");
  EXPECT_EQ(Put("abcdef").sha256, sha);  // checks the stored copy, which holds these bytes
  auto reader = store_->Open(sha);
  ASSERT_TRUE(reader);
  EXPECT_TRUE((*reader)->Region());
}

TEST_F(FsVerifiedBlobTest, ABlobAlteredAfterItsCommitIsHashedAgainAndRefused) {
  const std::string sha = PutAndSettle("abcdef");
  AlterInPlace(sha);
  ExpectHashedAndRefused(sha);
}

}  // namespace
}  // namespace dlipkg
