#include "adapters/common/overlapped_sha256.hpp"

#include <exception>
#include <system_error>
#include <utility>

namespace dlipkg {

OverlappedSha256::~OverlappedSha256() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  moved_.notify_all();
  thread_.join();
}

void OverlappedSha256::Hand(std::span<const char> bytes) {
  if (!thread_.joinable()) {
    try {
      thread_ = std::thread([this] { Run(); });
    } catch (const std::system_error&) {  // no thread to be had: hashed here, before the work
      hasher_.Update(bytes);
      return;
    }
  }
  {
    std::lock_guard lock(mutex_);
    pending_ = bytes;
    has_pending_ = true;
  }
  moved_.notify_all();
}

void OverlappedSha256::Wait() {
  std::unique_lock lock(mutex_);
  moved_.wait(lock, [&] { return !has_pending_; });
}

void OverlappedSha256::Join() {
  Wait();
  std::lock_guard lock(mutex_);
  if (failed_) std::rethrow_exception(std::exchange(failed_, nullptr));
}

void OverlappedSha256::Run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    moved_.wait(lock, [&] { return stop_ || has_pending_; });
    if (stop_) return;
    const auto bytes = pending_;
    lock.unlock();
    std::exception_ptr failed;
    try {
      hasher_.Update(bytes);
    } catch (...) {  // out of memory in OpenSSL: rethrown on the caller's thread
      failed = std::current_exception();
    }
    lock.lock();
    failed_ = failed;
    has_pending_ = false;
    moved_.notify_all();
  }
}

}  // namespace dlipkg
