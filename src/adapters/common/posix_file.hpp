// Thin helpers over POSIX file descriptors for the file-system adapters (FsBlobStore and file://
// sources): an owning descriptor and EINTR/short-count loops. Failures come back as errno values
// so each caller words its own message (without paths). A UniqueFd belongs to one thread at a time.
#pragma once

#include <cstddef>
#include <expected>
#include <filesystem>
#include <span>
#include <string>
#include <utility>

namespace dlipkg {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    Reset(std::exchange(other.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  int Get() const { return fd_; }
  bool Valid() const { return fd_ >= 0; }
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

// open(2), retried on EINTR. O_CLOEXEC is always added: the server may spawn processes.
std::expected<UniqueFd, int> OpenFd(const std::filesystem::path& path, int flags,
                                    unsigned mode = 0);
// read(2) of at most buffer.size() bytes, retried on EINTR; 0 at the end of the file.
std::expected<std::size_t, int> ReadSome(int fd, std::span<char> buffer);
// write(2) until every byte is written.
std::expected<void, int> WriteAll(int fd, std::span<const char> bytes);
// fsync of a directory, so that a rename or a new entry in it survives a crash.
std::expected<void, int> SyncDirectory(const std::filesystem::path& dir);
// strerror, thread-safe.
std::string ErrnoText(int err);

}  // namespace dlipkg
