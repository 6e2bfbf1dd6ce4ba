#include "adapters/common/overlapped_sha256.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <new>
#include <system_error>
#include <utility>

namespace dlipkg {

OverlappedSha256::Mapping::~Mapping() {
  if (bytes) ::munmap(bytes, kSlots * kSlotBytes);
}

OverlappedSha256::~OverlappedSha256() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  moved_.notify_all();
  thread_.join();
}

void OverlappedSha256::Update(std::span<const char> bytes) {
  Drain();
  hasher_.Update(bytes);
}

void OverlappedSha256::Queue(std::span<const char> bytes) {
  if (!slots_.bytes) {
    void* mapped = ::mmap(nullptr, kSlots * kSlotBytes, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapped == MAP_FAILED) throw std::bad_alloc();
    slots_.bytes = static_cast<char*>(mapped);
  }
  if (!thread_.joinable()) {
    try {
      thread_ = std::thread([this] { Run(); });
    } catch (const std::system_error&) {  // no thread to be had: hashed here
      hasher_.Update(bytes);
      return;
    }
  }
  while (!bytes.empty()) {
    std::size_t slot = 0;
    {
      std::unique_lock lock(mutex_);
      moved_.wait(lock, [&] { return queued_ < kSlots || failed_; });
      if (failed_) std::rethrow_exception(std::exchange(failed_, nullptr));
      slot = (head_ + queued_) % kSlots;
    }
    // The slot is the caller's until it is counted as queued: copied without the lock.
    const std::size_t n = std::min(bytes.size(), kSlotBytes);
    std::memcpy(slots_.bytes + slot * kSlotBytes, bytes.data(), n);
    filled_[slot] = n;
    bytes = bytes.subspan(n);
    {
      std::lock_guard lock(mutex_);
      ++queued_;
    }
    moved_.notify_all();
  }
}

std::string OverlappedSha256::FinishHex() {
  Drain();
  return hasher_.FinishHex();
}

void OverlappedSha256::Drain() {
  if (!thread_.joinable()) return;
  std::unique_lock lock(mutex_);
  moved_.wait(lock, [&] { return queued_ == 0; });
  if (failed_) std::rethrow_exception(std::exchange(failed_, nullptr));
}

void OverlappedSha256::Run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    moved_.wait(lock, [&] { return stop_ || queued_ > 0; });
    if (stop_) return;
    const std::span<const char> bytes(slots_.bytes + head_ * kSlotBytes, filled_[head_]);
    const bool spent = failed_ != nullptr;  // after a failure the digest is never asked for
    lock.unlock();
    std::exception_ptr failed;
    try {
      if (!spent) hasher_.Update(bytes);
    } catch (...) {  // out of memory in OpenSSL: rethrown on the caller's thread
      failed = std::current_exception();
    }
    lock.lock();
    if (failed) failed_ = failed;
    head_ = (head_ + 1) % kSlots;
    --queued_;
    moved_.notify_all();
  }
}

}  // namespace dlipkg
