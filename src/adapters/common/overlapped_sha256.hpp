// SHA-256 computed on a second thread while the caller's thread does other work on the same
// bytes: the directory blob store hashes an upload's chunk while write(2) copies it into the page
// cache, so a large upload costs the longer of the two instead of their sum. The thread starts
// at the first overlapped update and is joined at destruction. One instance per stream, used by
// one thread at a time, like Sha256Hasher.
#pragma once

#include <condition_variable>
#include <exception>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <utility>

#include "adapters/common/sha256.hpp"

namespace dlipkg {

class OverlappedSha256 {
 public:
  OverlappedSha256() = default;
  ~OverlappedSha256();
  OverlappedSha256(const OverlappedSha256&) = delete;
  OverlappedSha256& operator=(const OverlappedSha256&) = delete;

  // Hashes `bytes` here (for small chunks a thread hop costs more than it saves).
  void Update(std::span<const char> bytes) { hasher_.Update(bytes); }

  // Hashes `bytes` on the second thread while `work()` runs here; returns work()'s result once
  // both are done, so `bytes` may be reused as soon as this returns.
  template <typename Work>
  auto UpdateWhile(std::span<const char> bytes, Work&& work) {
    Hand(bytes);
    struct Joined {  // the thread reads `bytes`: never return, or throw, before it is done
      OverlappedSha256& self;
      ~Joined() { self.Wait(); }
    } joined{*this};
    auto result = std::forward<Work>(work)();
    Join();
    return result;
  }

  // The digest as 64 lower-case hex characters. Call once.
  std::string FinishHex() { return hasher_.FinishHex(); }

 private:
  void Hand(std::span<const char> bytes);
  void Wait();  // until the thread finished the bytes handed over
  void Join();  // Wait(), then rethrows what the thread's Update threw
  void Run();

  Sha256Hasher hasher_;  // touched by the thread only between Hand and Join
  std::mutex mutex_;
  std::condition_variable moved_;
  std::span<const char> pending_;  // bytes handed over and not yet hashed
  bool has_pending_ = false;
  std::exception_ptr failed_;  // what the thread's last Update threw
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace dlipkg
