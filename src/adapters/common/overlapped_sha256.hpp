// SHA-256 computed on a second thread while the caller's thread does other work: the directory
// blob store queues an upload's chunk for hashing and goes on to write(2) it into the page cache,
// so a large upload costs the longer of the two instead of their sum. Chunks are copied into a
// few slots of their own (at most kSlots x kSlotBytes per stream), so the caller's buffer may be
// reused at once and neither side waits for the other chunk by chunk: a slow write(2) (page
// reclaim) or a slow hash is absorbed by the slots. The thread starts at the first queued chunk
// and is joined at destruction. One instance per stream, used by one thread at a time, like
// Sha256Hasher.
#pragma once

#include <array>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <mutex>
#include <span>
#include <string>
#include <thread>

#include "adapters/common/sha256.hpp"

namespace dlipkg {

class OverlappedSha256 {
 public:
  static constexpr std::size_t kSlots = 4;
  static constexpr std::size_t kSlotBytes = std::size_t{1} << 20;

  OverlappedSha256() = default;
  ~OverlappedSha256();
  OverlappedSha256(const OverlappedSha256&) = delete;
  OverlappedSha256& operator=(const OverlappedSha256&) = delete;

  // Hashes `bytes` here, after everything queued (for small chunks a thread hop costs more than
  // it saves).
  void Update(std::span<const char> bytes);

  // Copies `bytes` into free slots (waiting while all are full) to be hashed on the second
  // thread, in order; returns once they are copied, so `bytes` may be reused at once.
  void Queue(std::span<const char> bytes);

  // The digest as 64 lower-case hex characters, once everything queued is hashed. Call once.
  std::string FinishHex();

 private:
  void Drain();  // until every queued chunk is hashed; rethrows what the thread's Update threw
  void Run();

  // The slots: kSlots x kSlotBytes mapped at the first queued chunk and unmapped at destruction,
  // so an upload's slots go back to the system when it ends instead of staying with the
  // allocator of whichever handler thread served it.
  struct Mapping {
    char* bytes = nullptr;
    Mapping() = default;
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping();
  };

  Sha256Hasher hasher_;  // touched by the thread only while chunks are queued
  Mapping slots_;
  std::array<std::size_t, kSlots> filled_{};  // bytes in each slot
  std::size_t head_ = 0;                      // the slot the thread hashes next
  std::size_t queued_ = 0;                    // slots filled and not yet hashed
  std::mutex mutex_;
  std::condition_variable moved_;
  std::exception_ptr failed_;  // what the thread's last Update threw
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace dlipkg
