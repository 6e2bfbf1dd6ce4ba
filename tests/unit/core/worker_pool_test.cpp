// WorkerPool's waits: WaitForIdle must see a worker that became free of queued work, whoever
// freed it (a task finishing, or a worker taking the last queued task while others stay idle).
#include "core/worker_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <memory>

#include "testing/settable_clock.hpp"

namespace dlipkg {
namespace {

using namespace std::chrono_literals;

// Three workers, one held by a long task: a task submitted now is taken by a second worker, and
// the third stays idle. A dispatcher already waiting for an idle worker with nothing queued (the
// job runner's) must wake once the task is taken, not at its next poll or the next task's end.
TEST(WorkerPool, WaitForIdleWakesWhenTheLastQueuedTaskIsTaken) {
  testing::SettableClock clock;
  std::atomic<bool> stop{false};
  std::latch release(1);
  {
    WorkerPool pool(3);
    // Frees the held worker before the pool joins its threads, however the test ends.
    struct Release {
      std::latch& latch;
      ~Release() { latch.count_down(); }
    } released{release};
    std::latch started(1);
    pool.Submit([&] {
      started.count_down();
      release.wait();
    });
    started.wait();
    for (int round = 0; round < 20; ++round) {
      // Shared with the task, which may still be leaving finish.wait() when the round ends.
      auto taken = std::make_shared<std::latch>(1);
      auto finish = std::make_shared<std::latch>(1);
      // As the job runner's dispatcher does: submit, then wait for an idle worker at once, so
      // the wait usually starts before a worker has taken the task.
      auto idle = std::async(std::launch::async, [&, taken, finish] {
        pool.Submit([taken, finish] {
          taken->count_down();
          finish->wait();
        });
        return pool.WaitForIdle(clock, clock.MonotonicMs() + 60'000, stop);
      });
      taken->wait();
      const bool woke = idle.wait_for(5s) == std::future_status::ready;
      if (!woke) {
        stop = true;
        pool.Wake();
      }
      finish->count_down();
      ASSERT_TRUE(woke) << "round " << round << ": the idle third worker was not seen; idle "
                        << pool.IdleWorkers();
      EXPECT_TRUE(idle.get());
      // Both tasks' workers are free again before the next round.
      ASSERT_TRUE(pool.WaitForIdle(clock, clock.MonotonicMs() + 60'000, stop));
    }
  }
}

}  // namespace
}  // namespace dlipkg
