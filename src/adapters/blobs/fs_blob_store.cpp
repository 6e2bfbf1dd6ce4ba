#include "adapters/blobs/fs_blob_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <string_view>
#include <system_error>
#include <vector>

#include <spdlog/spdlog.h>

#include "adapters/blobs/verifying_reader.hpp"
#include "adapters/common/posix_file.hpp"
#include "adapters/common/sha256.hpp"

namespace dlipkg {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kWriteBufferBytes = 256 * 1024;
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

class FsBlobWriter final : public BlobWriter {
 public:
  FsBlobWriter(fs::path blobs_dir, fs::path temp_path, UniqueFd fd)
      : blobs_dir_(std::move(blobs_dir)), temp_path_(std::move(temp_path)), fd_(std::move(fd)) {}
  ~FsBlobWriter() override { Discard(); }

  Result<void> Write(std::span<const char> bytes) override {
    if (!fd_.Valid() || sealed_)
      return Fail(ErrorCode::kInternal, "blob store write failed: writer is spent");
    hasher_.Update(bytes);
    size_ += static_cast<std::int64_t>(bytes.size());
    if (buffer_.size() + bytes.size() > kWriteBufferBytes) {
      if (auto flushed = Flush(); !flushed) return flushed;
    }
    if (bytes.size() >= kWriteBufferBytes) return WriteThrough(bytes);
    if (buffer_.capacity() < kWriteBufferBytes) buffer_.reserve(kWriteBufferBytes);
    buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
    return {};
  }

  Result<void> Seal() override {
    if (sealed_) return {};
    if (!fd_.Valid())
      return Fail(ErrorCode::kInternal, "blob store commit failed: writer is spent");
    if (auto flushed = Flush(); !flushed) return flushed;
    if (::fsync(fd_.Get()) != 0) return Abandon("sync", errno);
    sealed_ = true;
    return {};
  }

  Result<BlobInfo> Commit() override {
    if (auto sealed = Seal(); !sealed) return std::unexpected(sealed.error());
    fd_.Reset();
    BlobInfo info{hasher_.FinishHex(), size_};
    const fs::path fan_out = blobs_dir_ / info.sha256.substr(0, 2);
    if (auto made = EnsureDurableDirectory(fan_out); !made) return Abandon("mkdir", made.error());
    const fs::path target = fan_out / info.sha256;
    struct stat existing {};
    if (::stat(target.c_str(), &existing) == 0) {
      // A committed copy is kept only once it is checked to hold these very bytes; one altered
      // on disk would otherwise be served for ever under a hash it does not have (issue 15).
      auto intact = HoldsExactly(target, info);
      if (!intact) return Abandon(intact.error());
      if (*intact) {
        // Refreshing its time tells an age-based sweeper that the blob was just wanted again.
        ::utimensat(AT_FDCWD, target.c_str(), nullptr, 0);
        Discard();
        return info;
      }
      spdlog::warn("blob {} did not hold its bytes on disk; replaced by a verified copy",
                   info.sha256);
    }
    if (::rename(temp_path_.c_str(), target.c_str()) != 0) return Abandon("rename", errno);
    temp_path_.clear();
    if (auto synced = SyncDirectory(fan_out); !synced) return StoreFailure("sync", synced.error());
    return info;
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
    return {};
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
  fs::path temp_path_;   // empty once renamed or discarded
  UniqueFd fd_;          // invalid once committed or abandoned
  bool sealed_ = false;  // the temporary is durable; no more writes
  Sha256Hasher hasher_;
  std::vector<char> buffer_;
  std::int64_t size_ = 0;
};

class FsBlobReader final : public BlobReader {
 public:
  FsBlobReader(UniqueFd fd, std::int64_t size) : fd_(std::move(fd)), size_(size) {}
  std::int64_t Size() const override { return size_; }
  Result<std::size_t> Read(std::span<char> buffer) override {
    auto n = ReadSome(fd_.Get(), buffer);
    if (!n) return StoreFailure("read", n.error());
    return *n;
  }
  Result<void> Seek(std::int64_t offset) override {
    if (offset < 0 || offset > size_) return Fail(ErrorCode::kBadRequest, "seek past the end");
    if (::lseek(fd_.Get(), offset, SEEK_CUR) < 0) return StoreFailure("seek", errno);
    size_ -= offset;
    return {};
  }

 private:
  UniqueFd fd_;
  std::int64_t size_;
};

}  // namespace

Result<std::unique_ptr<FsBlobStore>> FsBlobStore::Open(const fs::path& root) {
  std::unique_ptr<FsBlobStore> store(new FsBlobStore(root));
  for (const fs::path& dir : {store->blobs_dir_, store->temp_dir_}) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return StoreFailure("open", ec);
  }
  return store;
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
    if (fd) return std::make_unique<FsBlobWriter>(blobs_dir_, std::move(temp), std::move(*fd));
    if (fd.error() != EEXIST) return StoreFailure("create", fd.error());
  }
  return StoreFailure("create", EEXIST);
}

Result<std::unique_ptr<BlobReader>> FsBlobStore::Open(const std::string& sha256) {
  if (!IsBlobKey(sha256)) return Fail(ErrorCode::kNotFound, "blob not found: invalid key");
  auto fd = OpenFd(BlobPath(sha256), O_RDONLY);
  if (!fd && fd.error() == ENOENT) return Fail(ErrorCode::kNotFound, "blob not found: " + sha256);
  if (!fd) return StoreFailure("open", fd.error());
  struct stat st {};
  if (::fstat(fd->Get(), &st) != 0) return StoreFailure("open", errno);
  return std::make_unique<VerifyingReader>(
      std::make_unique<FsBlobReader>(std::move(*fd), static_cast<std::int64_t>(st.st_size)),
      sha256);
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

Result<void> FsBlobStore::SweepTemporaries() {
  std::error_code ec;
  for (fs::directory_iterator entry(temp_dir_, ec), end; !ec && entry != end; entry.increment(ec)) {
    if (fs::remove_all(entry->path(), ec); ec) break;
  }
  if (ec) return StoreFailure("sweep", ec);
  return {};
}

}  // namespace dlipkg
