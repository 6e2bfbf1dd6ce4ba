#include "app/data_dir_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace dlipkg::app {
namespace {

std::string Errno() { return std::strerror(errno); }

// The pid the holder wrote, or "?" when it has not written it yet (it writes right after
// locking) or the file is unreadable.
std::string HolderPid(int fd) {
  char text[32] = {};
  const ssize_t n = pread(fd, text, sizeof text - 1, 0);
  std::string pid(text, n > 0 ? static_cast<std::size_t>(n) : 0);
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  return pid.empty() ? "?" : pid;
}

}  // namespace

Result<std::unique_ptr<DataDirLock>> DataDirLock::Acquire(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return Fail(ErrorCode::kInternal,
                "cannot create the directory " + dir.string() + ": " + ec.message());
  const std::filesystem::path file = dir / "LOCK";
  const int fd = open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Fail(ErrorCode::kInternal, "cannot open " + file.string() + ": " + Errno());
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const bool busy = errno == EWOULDBLOCK;
    std::string message =
        busy ? "another dlipkg (pid " + HolderPid(fd) + ") is serving " + dir.string()
             : "cannot lock " + file.string() + ": " + Errno();
    close(fd);
    return Fail(ErrorCode::kInternal, std::move(message));
  }
  const std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) != ssize_t(pid.size())) {
    std::string message = "cannot write " + file.string() + ": " + Errno();
    close(fd);
    return Fail(ErrorCode::kInternal, std::move(message));
  }
  return std::unique_ptr<DataDirLock>(new DataDirLock(fd));
}

// Closing the descriptor releases the lock; the file stays (removing it would race with a
// process that has just opened it).
DataDirLock::~DataDirLock() { close(fd_); }

}  // namespace dlipkg::app
