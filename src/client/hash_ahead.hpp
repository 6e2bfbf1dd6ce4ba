// The SHA-256 of a file being pushed, computed on a second thread while the transport sends it,
// so that hashing does not slow the thread that sends. Used by `dlipkg push` for local files.
// The thread reads the file itself (pread, so it shares the descriptor with the transport), and
// never more than a bounded lead ahead of the bytes sent: the bytes it reads are still in the
// page cache when the transport reads them, and a file larger than memory is not read twice
// from disk. Sent() may be called from any one thread; Finish() from the owner.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace dlipkg::client {

class HashAhead {
 public:
  static constexpr std::int64_t kDefaultLeadBytes = 64 << 20;

  // Starts hashing the first `size` bytes of `fd`, which must stay open until Finish() or
  // destruction.
  HashAhead(int fd, std::int64_t size, std::int64_t lead_bytes = kDefaultLeadBytes);
  ~HashAhead();  // stops the thread without waiting for the hash
  HashAhead(const HashAhead&) = delete;
  HashAhead& operator=(const HashAhead&) = delete;

  // The transport has read the file up to `end` (an offset; a retry that starts again at 0 does
  // not move the mark back). Cheap: called for every block the transport reads.
  void Sent(std::int64_t end);
  // Waits for the whole file to be hashed: its lower-case hex SHA-256, or the errno text of a
  // read that failed or found the file shorter than `size`.
  std::optional<std::string> Finish(std::string* why);
  // Bytes hashed so far (for tests).
  std::int64_t Hashed() const;

 private:
  void Run();

  const int fd_;
  const std::int64_t size_;
  const std::int64_t lead_;
  mutable std::mutex mutex_;
  std::condition_variable moved_;  // sent_, stop_ or done_ changed
  std::int64_t sent_ = 0;
  std::int64_t hashed_ = 0;
  bool stop_ = false;
  bool done_ = false;
  bool waiting_ = false;  // the thread waits for Sent(): only then does Sent() notify
  std::string hex_;
  std::string error_;
  std::thread thread_;  // last: starts once every member above is ready
};

}  // namespace dlipkg::client
