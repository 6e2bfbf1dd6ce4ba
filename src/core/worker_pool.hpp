// A fixed set of threads running fetch tasks, so source traffic is bounded and never runs on
// the HTTP threads. The server has two: one for synchronous uploads (which wait for their tasks,
// but only so long for a task to start) and one for the asynchronous job runner (which only
// takes a job when a worker is idle), so neither kind of upload can wait behind the other.
// Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "ports/clock.hpp"

namespace dlipkg {

class WorkerPool {
 public:
  explicit WorkerPool(int workers);
  ~WorkerPool();  // runs the tasks already queued, then joins
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void Submit(std::function<void()> task);
  // Runs fn(i) for i in [0, count) on the pool and waits for all of them.
  void RunAll(std::size_t count, const std::function<void(std::size_t)>& fn);
  // As RunAll, but a task that has not started when `clock` reaches `start_deadline_ms`
  // (Clock::MonotonicMs) never runs: its index is marked in the returned vector and fn is not
  // called for it. Waits for the started ones only, so the wait for a free worker is bounded
  // even when every worker is busy for long.
  std::vector<bool> RunAllStartingWithin(std::size_t count,
                                         const std::function<void(std::size_t)>& fn,
                                         const Clock& clock, std::int64_t start_deadline_ms);
  // Blocks until a worker is idle with nothing queued, or `stop` is set, or `clock` reaches
  // `deadline_ms` (Clock::MonotonicMs); true when a worker is free.
  bool WaitForIdle(const Clock& clock, std::int64_t deadline_ms, const std::atomic<bool>& stop);
  // Workers neither busy nor promised to a queued task: how many tasks would start at once.
  int IdleWorkers();
  // Wakes WaitForIdle callers (after their stop flag was set).
  void Wake();
  int Size() const { return static_cast<int>(threads_.size()); }

 private:
  void Run();

  std::mutex mutex_;
  std::condition_variable task_ready_;
  std::condition_variable idle_changed_;
  std::deque<std::function<void()>> tasks_;
  int busy_ = 0;
  bool stopping_ = false;
  std::vector<std::jthread> threads_;
};

}  // namespace dlipkg
