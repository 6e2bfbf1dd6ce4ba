#include "core/worker_pool.hpp"

#include <future>

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

bool WorkerPool::WaitForIdle(const Clock& clock, std::int64_t deadline_ms,
                             const std::atomic<bool>& stop) {
  std::unique_lock lock(mutex_);
  return clock.WaitUntil(lock, idle_changed_, deadline_ms, [&] {
    return stop || (tasks_.empty() && busy_ < static_cast<int>(threads_.size()));
  }) && !stop;
}

void WorkerPool::Wake() {
  std::lock_guard lock(mutex_);
  idle_changed_.notify_all();
}

void WorkerPool::Run() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mutex_);
      task_ready_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;  // stopping, and nothing left to run
      task = std::move(tasks_.front());
      tasks_.pop_front();
      ++busy_;
    }
    task();
    {
      std::lock_guard lock(mutex_);
      --busy_;
    }
    idle_changed_.notify_all();
  }
}

}  // namespace dlipkg
