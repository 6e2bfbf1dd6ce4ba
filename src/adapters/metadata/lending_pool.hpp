// Lends database connections (or anything not thread-safe) to one thread at a time: at most
// `capacity` exist; an idle one is reused, a new one is made when none is idle and there is
// room, and a borrower that finds its connection broken discards it, so the next borrower
// gets a fresh one. Used by the SQLite and PostgreSQL stores. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "domain/error.hpp"

namespace dlipkg {

template <class T>
class LendingPool {
 public:
  using Make = std::function<Result<std::unique_ptr<T>>()>;

  LendingPool(std::size_t capacity, Make make) : capacity_(capacity), make_(std::move(make)) {}
  LendingPool(const LendingPool&) = delete;
  LendingPool& operator=(const LendingPool&) = delete;

  // One connection, back to the pool when the lease ends unless discarded.
  class Lease {
   public:
    Lease(LendingPool* pool, std::unique_ptr<T> item) : pool_(pool), item_(std::move(item)) {}
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)), item_(std::move(other.item_)) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (pool_ != nullptr) pool_->Return(std::move(item_));
    }
    T& operator*() const { return *item_; }
    T* operator->() const { return item_.get(); }
    // The connection is broken: close it and free its place.
    void Discard() { item_.reset(); }

   private:
    LendingPool* pool_;
    std::unique_ptr<T> item_;
  };

  // Closes every idle connection: after one was found broken (the server restarted), the
  // others are likely broken too, and the next borrowers should not each find out.
  void DiscardIdle() {
    std::vector<std::unique_ptr<T>> dropped;
    {
      std::lock_guard lock(mutex_);
      live_ -= idle_.size();
      dropped.swap(idle_);
    }
    available_.notify_all();
  }

  // Waits for an idle connection or room for a new one. Errors: those of `make`.
  Result<Lease> Acquire() {
    std::unique_lock lock(mutex_);
    available_.wait(lock, [this] { return !idle_.empty() || live_ < capacity_; });
    if (!idle_.empty()) {
      auto item = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(item));
    }
    ++live_;
    lock.unlock();  // connecting takes a while: others may borrow meanwhile
    auto made = make_();
    if (!made) {
      Return(nullptr);
      return std::unexpected(made.error());
    }
    return Lease(this, std::move(*made));
  }

 private:
  // Null for a connection discarded or never made: its place becomes free.
  void Return(std::unique_ptr<T> item) {
    {
      std::lock_guard lock(mutex_);
      if (item)
        idle_.push_back(std::move(item));
      else
        --live_;
    }
    available_.notify_one();
  }

  const std::size_t capacity_;
  const Make make_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<T>> idle_;
  std::size_t live_ = 0;  // idle and lent
};

}  // namespace dlipkg
