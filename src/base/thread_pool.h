// ThreadPool: a fixed set of workers for short data-parallel ops (a matmul, an attention pass).
//
// parallel_for(n, fn) runs fn(i, thread_id) for i in [0, n), spread over the caller plus n_threads-1
// workers, and returns when all are done. Work is split statically: task i always goes to thread
// i % n_threads, so a thread keeps touching the same rows from op to op (cache locality) and results never
// depend on timing. Workers spin for a bounded time waiting for the next op, then sleep on a condvar.
//
// Thread-safety: one caller at a time (the engine thread owns the pool). fn must not call parallel_for.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace frugal {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int n_threads() const { return n_threads_; }

  // fn(task, thread): task in [0, n_tasks), thread in [0, n_threads()).
  void parallel_for(int64_t n_tasks, const std::function<void(int64_t task, int thread)>& fn);

  // Splits [0, n) into n_threads() contiguous ranges; fn(begin, end, thread) per non-empty range.
  void parallel_range(int64_t n, const std::function<void(int64_t begin, int64_t end, int thread)>& fn);

 private:
  void worker_main(int thread);
  void run_share(int thread);

  int n_threads_;
  std::vector<std::thread> workers_;
  const std::function<void(int64_t, int)>* fn_ = nullptr;
  int64_t n_tasks_ = 0;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace frugal
