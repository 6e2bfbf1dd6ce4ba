#include "adapters/common/posix_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace dlipkg {

void UniqueFd::Reset(int fd) {
  // close(2) must not be retried on EINTR on Linux: the descriptor is already gone.
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

std::expected<UniqueFd, int> OpenFd(const std::filesystem::path& path, int flags, unsigned mode) {
  for (;;) {
    const int fd = ::open(path.c_str(), flags | O_CLOEXEC, static_cast<mode_t>(mode));
    if (fd >= 0) return UniqueFd(fd);
    if (errno != EINTR) return std::unexpected(errno);
  }
}

std::expected<std::size_t, int> ReadSome(int fd, std::span<char> buffer) {
  for (;;) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno != EINTR) return std::unexpected(errno);
  }
}

std::expected<void, int> WriteAll(int fd, std::span<const char> bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::unexpected(errno);
    }
    bytes = bytes.subspan(static_cast<std::size_t>(n));
  }
  return {};
}

std::expected<void, int> SyncDirectory(const std::filesystem::path& dir) {
  auto fd = OpenFd(dir, O_RDONLY | O_DIRECTORY);
  if (!fd) return std::unexpected(fd.error());
  if (::fsync(fd->Get()) != 0) return std::unexpected(errno);
  return {};
}

std::string ErrnoText(int err) { return std::generic_category().message(err); }

}  // namespace dlipkg
