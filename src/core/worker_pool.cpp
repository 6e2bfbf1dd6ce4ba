#include "core/worker_pool.hpp"

#include <algorithm>
#include <future>
#include <memory>

namespace dlipkg {

WorkerPool::WorkerPool(int workers) {
  for (int i = 0; i < std::max(1, workers); ++i) threads_.emplace_back([this] { Run(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  task_ready_.notify_all();
  threads_.clear();  // joins
}

void WorkerPool::Submit(std::function<void()> task) {
  {
    std::lock_guard lock(mutex_);
    tasks_.push_back(std::move(task));
  }
  task_ready_.notify_one();
}

void WorkerPool::RunAll(std::size_t count, const std::function<void(std::size_t)>& fn) {
  std::vector<std::future<void>> done;
  for (std::size_t i = 0; i < count; ++i) {
    auto task = std::make_shared<std::packaged_task<void()>>([&fn, i] { fn(i); });
    done.push_back(task->get_future());
    Submit([task] { (*task)(); });
  }
  for (auto& f : done) f.get();
}

std::vector<bool> WorkerPool::RunAllStartingWithin(std::size_t count,
                                                   const std::function<void(std::size_t)>& fn,
                                                   const Clock& clock,
                                                   std::int64_t start_deadline_ms) {
  // Shared with the queued tasks, which may outlive this call when they never start.
  struct Batch {
    std::mutex mutex;
    std::condition_variable changed;
    std::vector<int> state;  // 0 waiting, 1 running, 2 done, 3 skipped
  };
  auto batch = std::make_shared<Batch>();
  batch->state.assign(count, 0);
  for (std::size_t i = 0; i < count; ++i) {
    Submit([batch, &fn, i] {
      {
        std::lock_guard lock(batch->mutex);
        if (batch->state[i] != 0) return;  // skipped: fn may be gone already
        batch->state[i] = 1;
        batch->changed.notify_all();
      }
      fn(i);
      std::lock_guard lock(batch->mutex);
      batch->state[i] = 2;
      batch->changed.notify_all();
    });
  }
  std::unique_lock lock(batch->mutex);
  const auto all_started = [&] {
    return std::ranges::none_of(batch->state, [](int s) { return s == 0; });
  };
  clock.WaitUntil(lock, batch->changed, start_deadline_ms, all_started);
  std::vector<bool> skipped(count, false);
  for (std::size_t i = 0; i < count; ++i) {
    if (batch->state[i] == 0) {
      batch->state[i] = 3;
      skipped[i] = true;
    }
  }
  batch->changed.wait(
      lock, [&] { return std::ranges::none_of(batch->state, [](int s) { return s == 1; }); });
  return skipped;
}

bool WorkerPool::WaitForIdle(const Clock& clock, std::int64_t deadline_ms,
                             const std::atomic<bool>& stop) {
  std::unique_lock lock(mutex_);
  return clock.WaitUntil(lock, idle_changed_, deadline_ms, [&] {
    return stop || (tasks_.empty() && busy_ < static_cast<int>(threads_.size()));
  }) && !stop;
}

int WorkerPool::IdleWorkers() {
  std::lock_guard lock(mutex_);
  return std::max(0, static_cast<int>(threads_.size()) - busy_ - static_cast<int>(tasks_.size()));
}

void WorkerPool::Wake() {
  std::lock_guard lock(mutex_);
  idle_changed_.notify_all();
}

void WorkerPool::Run() {
  for (;;) {
    std::function<void()> task;
    bool queue_emptied = false;
    {
      std::unique_lock lock(mutex_);
      task_ready_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;  // stopping, and nothing left to run
      task = std::move(tasks_.front());
      tasks_.pop_front();
      ++busy_;
      queue_emptied = tasks_.empty() && busy_ < static_cast<int>(threads_.size());
    }
    // WaitForIdle waits for an empty queue as well as a free worker: taking the last queued
    // task while another worker is free makes it true too (it waited a poll without this).
    if (queue_emptied) idle_changed_.notify_all();
    task();
    {
      std::lock_guard lock(mutex_);
      --busy_;
    }
    idle_changed_.notify_all();
  }
}

}  // namespace dlipkg
