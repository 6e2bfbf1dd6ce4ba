#include "client/hash_ahead.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <span>
#include <vector>

#include "adapters/common/posix_file.hpp"
#include "adapters/common/sha256.hpp"

namespace dlipkg::client {
namespace {
constexpr std::size_t kReadBytes = 1 << 20;
}  // namespace

HashAhead::HashAhead(int fd, std::int64_t size, std::int64_t lead_bytes)
    : fd_(fd),
      size_(size),
      lead_(std::max<std::int64_t>(lead_bytes, kReadBytes)),
      thread_([this] { Run(); }) {}

HashAhead::~HashAhead() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  moved_.notify_all();
  thread_.join();
}

void HashAhead::Sent(std::int64_t end) {
  std::lock_guard lock(mutex_);
  if (end <= sent_) return;
  sent_ = end;
  if (waiting_) moved_.notify_all();
}

std::optional<std::string> HashAhead::Finish(std::string* why) {
  {
    std::unique_lock lock(mutex_);
    // Whatever the transport did, the rest of the file may be hashed now.
    sent_ = size_;
    moved_.notify_all();
    moved_.wait(lock, [&] { return done_; });
  }
  if (!error_.empty()) {
    if (why) *why = error_;
    return std::nullopt;
  }
  return hex_;
}

std::int64_t HashAhead::Hashed() const {
  std::lock_guard lock(mutex_);
  return hashed_;
}

void HashAhead::Run() {
  Sha256Hasher hasher;
  std::vector<char> buffer(kReadBytes);
  std::int64_t done = 0;
  std::string error;
  while (done < size_) {
    {
      std::unique_lock lock(mutex_);
      hashed_ = done;
      waiting_ = true;
      moved_.wait(lock, [&] { return stop_ || done < sent_ + lead_; });
      waiting_ = false;
      if (stop_) break;
    }
    const auto want = static_cast<std::size_t>(std::min<std::int64_t>(size_ - done, kReadBytes));
    const auto got = ::pread(fd_, buffer.data(), want, done);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      error = got < 0 ? ErrnoText(errno) : "it got shorter";
      break;
    }
    hasher.Update(std::span<const char>(buffer.data(), static_cast<std::size_t>(got)));
    done += got;
  }
  std::string hex = error.empty() && done == size_ ? hasher.FinishHex() : std::string();
  std::lock_guard lock(mutex_);
  hashed_ = done;
  if (hex.empty() && error.empty()) error = "stopped";
  hex_ = std::move(hex);
  error_ = std::move(error);
  done_ = true;
  moved_.notify_all();
}

}  // namespace dlipkg::client
