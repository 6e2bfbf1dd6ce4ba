#include "adapters/blobs/fs_blob_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <mutex>
#include <random>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

#include <spdlog/spdlog.h>

#include "adapters/blobs/verifying_reader.hpp"
#include "adapters/common/overlapped_sha256.hpp"
#include "adapters/common/posix_file.hpp"
#include "adapters/common/sha256.hpp"

namespace dlipkg {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kWriteBufferBytes = 256 * 1024;
constexpr std::int64_t kWritebackBytes = 8 << 20;
constexpr unsigned kBlobFileMode = 0640;
constexpr unsigned kFanOutDirMode = 0750;
constexpr int kTempNameAttempts = 8;

bool IsBlobKey(std::string_view key) {
  return key.size() == 64 && std::ranges::all_of(key, [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Messages reach clients: they name the operation and the OS reason, never a path.
std::unexpected<Error> StoreFailure(std::string_view operation, const std::error_code& ec) {
  return Fail(ErrorCode::kInternal,
              "blob store " + std::string(operation) + " failed: " + ec.message());
}

// Failures that may pass by themselves (a full or read-only-remounted disk, descriptors or
// memory running out): an async job retries them within its deadline instead of failing.
bool IsTransient(int err) {
  return err == ENOSPC || err == EDQUOT || err == EROFS || err == EMFILE || err == ENFILE ||
         err == ENOMEM || err == EAGAIN || err == EIO;
}

std::unexpected<Error> StoreFailure(std::string_view operation, int err) {
  auto failure = StoreFailure(operation, std::error_code(err, std::generic_category()));
  failure.error().retryable = IsTransient(err);
  return failure;
}

std::string RandomTempName() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  char name[32];
  std::snprintf(name, sizeof name, "%016llx.part", static_cast<unsigned long long>(random()));
  return name;
}

// Creates `dir` (and a missing parent: someone may have removed blobs/ under a running server)
// if missing; a new directory entry is made durable by syncing its parent.
std::expected<void, int> EnsureDurableDirectory(const fs::path& dir) {
  if (::mkdir(dir.c_str(), kFanOutDirMode) == 0) return SyncDirectory(dir.parent_path());
  if (errno == EEXIST) return {};
  if (errno != ENOENT || dir.parent_path() == dir) return std::unexpected(errno);
  if (auto parent = EnsureDurableDirectory(dir.parent_path()); !parent) return parent;
  if (::mkdir(dir.c_str(), kFanOutDirMode) != 0 && errno != EEXIST) return std::unexpected(errno);
  return SyncDirectory(dir.parent_path());
}

// Whether the committed file at `path` holds exactly `expected`: the same size and SHA-256.
// A file altered on disk (bit rot, a stray write) fails this and is replaced by the caller.
Result<bool> HoldsExactly(const fs::path& path, const BlobInfo& expected) {
  auto fd = OpenFd(path, O_RDONLY);
  if (!fd) return StoreFailure("verify", fd.error());
  struct stat st {};
  if (::fstat(fd->Get(), &st) != 0) return StoreFailure("verify", errno);
  if (st.st_size != expected.size) return false;
  Sha256Hasher hasher;
  std::vector<char> buffer(kWriteBufferBytes);
  for (;;) {
    auto n = ReadSome(fd->Get(), buffer);
    if (!n) return StoreFailure("verify", n.error());
    if (*n == 0) break;
    hasher.Update(std::span<const char>(buffer.data(), *n));
  }
  return hasher.FinishHex() == expected.sha256;
}

// What a writer asks of the store's record of verified files (FsBlobStore::VerifiedBlobs):
// whether the file open at `fd` is known to hold the bytes of `sha256`, and, at a commit, that
// the committed file open at `fd` was just found to hold them.
struct VerifiedHooks {
  std::function<bool(const std::string& sha256, int fd)> trusted;
  std::function<void(const std::string& sha256, int fd)> committed;
};

}  // namespace

// Which renames into each fan-out directory a finished fsync of it covers. A sync that began
// after a rename had returned makes that rename durable; so a writer whose rename is covered
// (another writer of the batch, or of a concurrent upload, synced the same directory since)
// skips its own fsync, which on most disks is a cache flush even when nothing is left to write.
// Sequence numbers are taken after each rename and before each sync, from one counter.
class FsBlobStore::DirectorySyncs {
 public:
  // After a rename into `dir` returned: its sequence number.
  std::uint64_t Renamed() { return ++clock_; }
  bool Covered(std::size_t dir, std::uint64_t renamed) const {
    return durable_[dir].load(std::memory_order_acquire) > renamed;
  }
  // Before an fsync of `dir` starts: its sequence number, for Finished once it succeeded.
  std::uint64_t Began() { return ++clock_; }
  void Finished(std::size_t dir, std::uint64_t began) {
    ++syncs_;
    std::uint64_t seen = durable_[dir].load(std::memory_order_relaxed);
    while (seen < began &&
           !durable_[dir].compare_exchange_weak(seen, began, std::memory_order_acq_rel)) {
    }
  }
  std::uint64_t Syncs() const { return syncs_.load(); }

 private:
  std::atomic<std::uint64_t> clock_{0};
  std::atomic<std::uint64_t> syncs_{0};
  std::array<std::atomic<std::uint64_t>, 256> durable_{};
};

namespace {

// The fan-out directory of a blob key (its first two hex digits) as a number, 0 to 255.
std::size_t FanOutIndex(const std::string& sha256) {
  return static_cast<std::size_t>(std::stoul(sha256.substr(0, 2), nullptr, 16));
}

class FsBlobWriter final : public BlobWriter {
 public:
  FsBlobWriter(fs::path blobs_dir, fs::path temp_path, UniqueFd fd, VerifiedHooks verified,
               std::shared_ptr<FsBlobStore::DirectorySyncs> syncs)
      : blobs_dir_(std::move(blobs_dir)),
        temp_path_(std::move(temp_path)),
        fd_(std::move(fd)),
        verified_(std::move(verified)),
        syncs_(std::move(syncs)) {}
  ~FsBlobWriter() override { Discard(); }

  Result<void> Write(std::span<const char> bytes) override {
    if (!fd_.Valid() || sealed_)
      return Fail(ErrorCode::kInternal, "blob store write failed: writer is spent");
    size_ += static_cast<std::int64_t>(bytes.size());
    if (buffer_.size() + bytes.size() > kWriteBufferBytes) {
      if (auto flushed = Flush(); !flushed) return flushed;
    }
    // A large chunk is hashed on the hasher's thread while write(2) copies it here.
    if (bytes.size() >= kWriteBufferBytes) {
      hasher_.Queue(bytes);
      return WriteThrough(bytes);
    }
    hasher_.Update(bytes);
    if (buffer_.capacity() < kWriteBufferBytes) buffer_.reserve(kWriteBufferBytes);
    buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
    return {};
  }

  Result<BlobInfo> Seal() override {
    if (sealed_) return *sealed_;
    if (!fd_.Valid())
      return Fail(ErrorCode::kInternal, "blob store commit failed: writer is spent");
    if (auto flushed = Flush(); !flushed) return std::unexpected(flushed.error());
    if (::fsync(fd_.Get()) != 0) return Abandon("sync", errno);
    sealed_ = BlobInfo{hasher_.FinishHex(), size_};
    return *sealed_;
  }

  // Flushes the buffer and starts the disk writing the rest of the file, so that the Seals of a
  // batch of writers wait for writes already under way instead of starting one each.
  Result<void> BeginSeal() override {
    if (sealed_) return {};
    if (!fd_.Valid())
      return Fail(ErrorCode::kInternal, "blob store commit failed: writer is spent");
    if (auto flushed = Flush(); !flushed) return flushed;
    // A writer waiting in a batch keeps no write buffer (256 KiB): up to a hundred may wait.
    std::vector<char>().swap(buffer_);
    if (written_ > writeback_from_) {
      ::sync_file_range(fd_.Get(), writeback_from_, written_ - writeback_from_,
                        SYNC_FILE_RANGE_WRITE);
      writeback_from_ = written_;
    }
    return {};
  }

  Result<BlobInfo> Commit() override {
    auto info = Publish();
    if (!info) return info;
    if (auto synced = SyncPublished(); !synced) return std::unexpected(synced.error());
    return info;
  }

  // Renames the sealed temporary into place; the fan-out directory's fsync (which makes the
  // name durable) is SyncPublished's, so a batch's renames can share one journal commit.
  Result<BlobInfo> Publish() override {
    if (!fd_.Valid())
      return Fail(ErrorCode::kInternal, "blob store commit failed: writer is spent");
    auto sealed = Seal();
    if (!sealed) return sealed;
    const BlobInfo info = *sealed;
    const fs::path fan_out = blobs_dir_ / info.sha256.substr(0, 2);
    if (auto made = EnsureDurableDirectory(fan_out); !made) return Abandon("mkdir", made.error());
    const fs::path target = fan_out / info.sha256;
    struct stat existing {};
    if (::stat(target.c_str(), &existing) == 0) {
      // A committed copy is kept only once it is checked to hold these very bytes; one altered
      // on disk would otherwise be served for ever under a hash it does not have (issue 15).
      // A copy verified since it last changed is not read again.
      auto intact =
          KnownIntact(target, info.sha256) ? Result<bool>(true) : HoldsExactly(target, info);
      if (!intact) return Abandon(intact.error());
      if (*intact) {
        // Refreshing its time tells an age-based sweeper that the blob was just wanted again.
        ::utimensat(AT_FDCWD, target.c_str(), nullptr, 0);
        Discard();
        if (auto kept = OpenFd(target, O_RDONLY)) verified_.committed(info.sha256, kept->Get());
        return info;
      }
      spdlog::warn("blob {} did not hold its bytes on disk; replaced by a verified copy",
                   info.sha256);
    }
    if (::rename(temp_path_.c_str(), target.c_str()) != 0) return Abandon("rename", errno);
    renamed_ = syncs_->Renamed();
    temp_path_.clear();
    verified_.committed(info.sha256, fd_.Get());  // after the rename, which changes the ctime
    fd_.Reset();
    unsynced_dir_ = fan_out;
    unsynced_index_ = FanOutIndex(info.sha256);
    return info;
  }

  Result<void> SyncPublished() override {
    if (unsynced_dir_.empty()) return {};  // nothing renamed (an existing copy was kept)
    if (!syncs_->Covered(unsynced_index_, renamed_)) {
      const std::uint64_t began = syncs_->Began();
      if (auto synced = SyncDirectory(unsynced_dir_); !synced)
        return StoreFailure("sync", synced.error());
      syncs_->Finished(unsynced_index_, began);
    }
    unsynced_dir_.clear();
    return {};
  }

 private:
  Result<void> Flush() {
    if (buffer_.empty()) return {};
    auto written = WriteThrough(buffer_);
    buffer_.clear();
    return written;
  }

  Result<void> WriteThrough(std::span<const char> bytes) {
    if (auto written = WriteAll(fd_.Get(), bytes); !written)
      return Abandon("write", written.error());
    written_ += static_cast<std::int64_t>(bytes.size());
    StartWriteback();
    return {};
  }

  bool KnownIntact(const fs::path& target, const std::string& sha256) const {
    auto existing = OpenFd(target, O_RDONLY);
    return existing && verified_.trusted(sha256, existing->Get());
  }

  // Starts the disk writing each kWritebackBytes as soon as they are in the page cache, so the
  // disk works while the rest arrives and the fsync at the end waits for the tail only (with
  // one fsync of the whole file it waited for all of it). Advisory: fsync still decides.
  void StartWriteback() {
    if (written_ - writeback_from_ < kWritebackBytes) return;
    ::sync_file_range(fd_.Get(), writeback_from_, written_ - writeback_from_,
                      SYNC_FILE_RANGE_WRITE);
    writeback_from_ = written_;
  }

  // A failed writer cannot be resumed: drop the temporary now rather than at destruction.
  std::unexpected<Error> Abandon(std::string_view operation, int err) {
    Discard();
    return StoreFailure(operation, err);
  }
  std::unexpected<Error> Abandon(Error error) {
    Discard();
    return std::unexpected(std::move(error));
  }

  void Discard() {
    fd_.Reset();
    if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
    temp_path_.clear();
  }

  fs::path blobs_dir_;
  fs::path temp_path_;              // empty once renamed or discarded
  fs::path unsynced_dir_;           // renamed into, not synced yet (Publish, SyncPublished)
  UniqueFd fd_;                     // invalid once committed or abandoned
  std::optional<BlobInfo> sealed_;  // the temporary is durable; no more writes
  OverlappedSha256 hasher_;
  std::vector<char> buffer_;
  std::int64_t size_ = 0;
  std::int64_t written_ = 0;         // bytes handed to write(2)
  std::int64_t writeback_from_ = 0;  // the first byte whose writeback was not started yet
  VerifiedHooks verified_;
  std::shared_ptr<FsBlobStore::DirectorySyncs> syncs_;
  std::uint64_t renamed_ = 0;       // Publish's rename, in syncs_'s sequence
  std::size_t unsynced_index_ = 0;  // unsynced_dir_'s number
};

// What stat says about a blob file: if any of it differs, the file changed (or was replaced).
struct FileIdentity {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_ns = 0;
  bool operator==(const FileIdentity&) const = default;
};

std::int64_t Nanoseconds(const timespec& time) {
  return static_cast<std::int64_t>(time.tv_sec) * 1'000'000'000 + time.tv_nsec;
}

FileIdentity IdentityOf(const struct stat& st) {
  return FileIdentity{st.st_dev, st.st_ino, st.st_size, Nanoseconds(st.st_mtim),
                      Nanoseconds(st.st_ctim)};
}

std::expected<FileIdentity, int> IdentityOf(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return std::unexpected(errno);
  return IdentityOf(st);
}

std::int64_t WallClockNs() {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  return Nanoseconds(now);
}

// A blob file read (pread at its own offset, so Region and Read agree on the position).
// `trusted`: the file is one whose SHA-256 was verified since it last changed (a VerifiedBlobs
// hit), so it is served unhashed; the Read of its last bytes, like ConfirmUnchanged, first
// checks that it still is that file.
class FsBlobReader final : public BlobReader {
 public:
  FsBlobReader(UniqueFd fd, FileIdentity identity, bool trusted)
      : fd_(std::move(fd)), identity_(identity), end_(identity.size), trusted_(trusted) {}
  // What is left after a Seek; reads do not change it.
  std::int64_t Size() const override { return end_ - start_; }

  Result<std::size_t> Read(std::span<char> buffer) override {
    const auto want = static_cast<std::size_t>(
        std::min<std::int64_t>(static_cast<std::int64_t>(buffer.size()), end_ - offset_));
    if (want == 0) return 0;
    auto n = PreadSome(buffer.first(want));
    if (!n) return StoreFailure("read", n.error());
    if (*n == 0) return 0;
    if (trusted_ && offset_ + static_cast<std::int64_t>(*n) == end_) {
      if (auto same = ConfirmUnchanged(); !same) return std::unexpected(same.error());
    }
    offset_ += static_cast<std::int64_t>(*n);
    return *n;
  }

  Result<void> Seek(std::int64_t offset) override {
    if (offset < 0 || offset > end_ - offset_)
      return Fail(ErrorCode::kBadRequest, "seek past the end");
    offset_ += offset;
    start_ = offset_;
    trusted_ = false;  // a range is not checked, so there is nothing to confirm
    return {};
  }

  std::optional<FileRegion> Region() override {
    return FileRegion{fd_.Get(), offset_, end_ - offset_};
  }

  Result<void> ConfirmUnchanged() override {
    if (!trusted_) return {};
    if (!Unchanged())
      return Fail(ErrorCode::kCorrupted,
                  "the stored file changed since its SHA-256 was verified (altered on storage)");
    return {};
  }

  // Whether the file still has the identity it had when it was opened.
  bool Unchanged() const {
    auto now = IdentityOf(fd_.Get());
    return now && *now == identity_;
  }

 private:
  std::expected<std::size_t, int> PreadSome(std::span<char> buffer) {
    for (;;) {
      const ssize_t n = ::pread(fd_.Get(), buffer.data(), buffer.size(), offset_);
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno != EINTR) return std::unexpected(errno);
    }
  }

  UniqueFd fd_;
  const FileIdentity identity_;
  std::int64_t start_ = 0;   // where the bytes begin (after a Seek)
  std::int64_t offset_ = 0;  // the next byte to read
  const std::int64_t end_;
  bool trusted_;
};

}  // namespace

// Blobs whose whole content was hashed and found matching, by the identity their file had then.
// Kept in memory only (a restart verifies again), bounded, and trusted for kTrustTime at most.
class FsBlobStore::VerifiedBlobs {
 public:
  bool Trusts(const std::string& sha256, const FileIdentity& identity) {
    std::lock_guard lock(mutex_);
    const auto found = entries_.find(sha256);
    if (found == entries_.end()) return false;
    if (found->second.identity == identity &&
        std::chrono::steady_clock::now() - found->second.verified < kTrustTime)
      return true;
    entries_.erase(found);
    return false;
  }

  // A read that began at `began_ns` (wall clock) verified the file with `identity`. Timestamps
  // are coarse (one kernel tick, <= 10 ms): a file changed within a tick of its last change
  // could keep its identity, so a file that changed less than kRacyMargin before the read
  // began is not recorded (the "racy clean" rule git uses for its index).
  void Record(const std::string& sha256, const FileIdentity& identity, std::int64_t began_ns) {
    if (began_ns - identity.ctime_ns < kRacyMarginNs ||
        began_ns - identity.mtime_ns < kRacyMarginNs)
      return;
    std::lock_guard lock(mutex_);
    if (entries_.size() >= kMaxEntries && !entries_.contains(sha256)) EvictOldest();
    entries_[sha256] = Entry{identity, std::chrono::steady_clock::now()};
  }

  // The file with `identity` was just committed by this process from bytes it hashed as it
  // wrote them, so its content is as verified as after a whole read. The racy-clean margin does
  // not apply: no read raced a write here; an edit by another process within the same clock tick
  // as the commit would go unseen until the entry's trust time ends, as with any entry.
  void RecordWritten(const std::string& sha256, const FileIdentity& identity) {
    std::lock_guard lock(mutex_);
    if (entries_.size() >= kMaxEntries && !entries_.contains(sha256)) EvictOldest();
    entries_[sha256] = Entry{identity, std::chrono::steady_clock::now()};
  }

  void Forget(const std::string& sha256) {
    std::lock_guard lock(mutex_);
    entries_.erase(sha256);
  }

 private:
  // Verification proves the bytes as the page cache held them; reading them again from disk
  // now and then is what catches a disk that rots them silently.
  static constexpr auto kTrustTime = std::chrono::hours(1);
  static constexpr std::int64_t kRacyMarginNs = 20'000'000;  // two ticks at HZ=100
  static constexpr std::size_t kMaxEntries = 4096;

  struct Entry {
    FileIdentity identity;
    std::chrono::steady_clock::time_point verified;
  };

  void EvictOldest() {
    auto oldest = std::ranges::min_element(entries_, {},
                                           [](const auto& entry) { return entry.second.verified; });
    if (oldest != entries_.end()) entries_.erase(oldest);
  }

  std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
};

FsBlobStore::FsBlobStore(const fs::path& root)
    : blobs_dir_(root / "blobs"),
      temp_dir_(root / "tmp"),
      verified_(std::make_shared<VerifiedBlobs>()),
      syncs_(std::make_shared<DirectorySyncs>()) {}

FsBlobStore::~FsBlobStore() = default;

Result<std::unique_ptr<FsBlobStore>> FsBlobStore::Open(const fs::path& root) {
  std::unique_ptr<FsBlobStore> store(new FsBlobStore(root));
  for (const fs::path& dir : {store->blobs_dir_, store->temp_dir_}) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return StoreFailure("open", ec);
  }
  if (auto made = store->MakeFanOutDirectories(); !made) return std::unexpected(made.error());
  return store;
}

// All 256 at once, made durable by one sync of blobs/: made one by one as the first blob of
// each arrived, they cost an fsync of blobs/ each, on the upload path (a quarter of the disk
// waits of the first thousand uploads). A directory removed later is made again on demand.
Result<void> FsBlobStore::MakeFanOutDirectories() {
  bool made = false;
  for (int i = 0; i < 256; ++i) {
    char name[3];
    std::snprintf(name, sizeof name, "%02x", i);
    if (::mkdir((blobs_dir_ / name).c_str(), kFanOutDirMode) == 0)
      made = true;
    else if (errno != EEXIST)
      return StoreFailure("open", errno);
  }
  if (!made) return {};
  if (auto synced = SyncDirectory(blobs_dir_); !synced) return StoreFailure("open", synced.error());
  return {};
}

fs::path FsBlobStore::BlobPath(const std::string& sha256) const {
  return blobs_dir_ / sha256.substr(0, 2) / sha256;
}

Result<std::unique_ptr<BlobWriter>> FsBlobStore::Create() {
  for (int attempt = 0; attempt < kTempNameAttempts; ++attempt) {
    fs::path temp = temp_dir_ / RandomTempName();
    auto fd = OpenFd(temp, O_WRONLY | O_CREAT | O_EXCL, kBlobFileMode);
    if (!fd && fd.error() == ENOENT) {
      // tmp/ was removed under the running server: make it again rather than fail every upload.
      if (auto made = EnsureDurableDirectory(temp_dir_); !made)
        return StoreFailure("create", made.error());
      fd = OpenFd(temp, O_WRONLY | O_CREAT | O_EXCL, kBlobFileMode);
    }
    if (fd) {
      VerifiedHooks hooks{.trusted =
                              [verified = verified_](const std::string& sha256, int existing) {
                                auto identity = IdentityOf(existing);
                                return identity && verified->Trusts(sha256, *identity);
                              },
                          .committed =
                              [verified = verified_](const std::string& sha256, int committed) {
                                if (auto identity = IdentityOf(committed))
                                  verified->RecordWritten(sha256, *identity);
                              }};
      return std::make_unique<FsBlobWriter>(blobs_dir_, std::move(temp), std::move(*fd),
                                            std::move(hooks), syncs_);
    }
    if (fd.error() != EEXIST) return StoreFailure("create", fd.error());
  }
  return StoreFailure("create", EEXIST);
}

Result<std::unique_ptr<BlobReader>> FsBlobStore::Open(const std::string& sha256) {
  if (!IsBlobKey(sha256)) return Fail(ErrorCode::kNotFound, "blob not found: invalid key");
  const std::int64_t began_ns = WallClockNs();
  auto fd = OpenFd(BlobPath(sha256), O_RDONLY);
  if (!fd && fd.error() == ENOENT) return Fail(ErrorCode::kNotFound, "blob not found: " + sha256);
  if (!fd) return StoreFailure("open", fd.error());
  auto identity = IdentityOf(fd->Get());
  if (!identity) return StoreFailure("open", identity.error());
  if (verified_->Trusts(sha256, *identity))
    return std::make_unique<FsBlobReader>(std::move(*fd), *identity, /*trusted=*/true);
  auto raw = std::make_unique<FsBlobReader>(std::move(*fd), *identity, /*trusted=*/false);
  // Runs inside the Read that verified the blob, while `file` (owned by the verifier) lives.
  auto on_verified = [verified = verified_, sha256, identity = *identity, began_ns,
                      file = raw.get()] {
    if (file->Unchanged()) verified->Record(sha256, identity, began_ns);
  };
  return std::make_unique<VerifyingReader>(std::move(raw), sha256, std::move(on_verified));
}

Result<bool> FsBlobStore::Exists(const std::string& sha256) {
  if (!IsBlobKey(sha256)) return false;
  struct stat st {};
  if (::stat(BlobPath(sha256).c_str(), &st) == 0) return true;
  if (errno == ENOENT) return false;
  return StoreFailure("stat", errno);
}

Result<void> FsBlobStore::Remove(const std::string& sha256) {
  if (!IsBlobKey(sha256)) return Fail(ErrorCode::kBadRequest, "blob store remove: invalid key");
  verified_->Forget(sha256);
  if (::unlink(BlobPath(sha256).c_str()) != 0 && errno != ENOENT)
    return StoreFailure("remove", errno);
  return {};
}

Result<std::vector<std::string>> FsBlobStore::List() {
  std::vector<std::string> keys;
  std::error_code ec;
  for (fs::directory_iterator fan_out(blobs_dir_, ec), end; !ec && fan_out != end;
       fan_out.increment(ec)) {
    const std::string prefix = fan_out->path().filename();
    if (prefix.size() != 2 || !fan_out->is_directory(ec)) continue;
    for (fs::directory_iterator blob(fan_out->path(), ec); !ec && blob != end; blob.increment(ec)) {
      std::string key = blob->path().filename();
      if (IsBlobKey(key) && key.starts_with(prefix)) keys.push_back(std::move(key));
    }
    if (ec) break;
  }
  if (ec) return StoreFailure("list", ec);
  return keys;
}

std::uint64_t FsBlobStore::DirectorySyncCount() const { return syncs_->Syncs(); }

Result<void> FsBlobStore::CheckReady() {
  for (const auto* dir : {&blobs_dir_, &temp_dir_}) {
    struct stat info {};
    if (stat(dir->c_str(), &info) != 0 || !S_ISDIR(info.st_mode) ||
        access(dir->c_str(), W_OK | X_OK) != 0)
      return Fail(ErrorCode::kInternal, std::string("blob directory not usable: ") +
                                            (dir == &blobs_dir_ ? "blobs/" : "tmp/") + " " +
                                            std::strerror(errno));
  }
  return {};
}

Result<std::size_t> FsBlobStore::SweepTemporaries(std::chrono::milliseconds min_age) {
  std::error_code ec;
  std::size_t removed = 0;
  const auto cutoff = fs::file_time_type::clock::now() - min_age;
  for (fs::directory_iterator entry(temp_dir_, ec), end; !ec && entry != end; entry.increment(ec)) {
    if (min_age.count() > 0) {
      std::error_code stat_ec;
      const auto written = fs::last_write_time(entry->path(), stat_ec);
      // Gone meanwhile (its writer committed or dropped it), or still being written.
      if (stat_ec || written > cutoff) continue;
    }
    if (fs::remove_all(entry->path(), ec); ec) break;
    ++removed;
  }
  if (ec) return StoreFailure("sweep", ec);
  return removed;
}

}  // namespace dlipkg
