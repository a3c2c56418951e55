// ThreadPool: a fixed set of workers for short data-parallel ops (a matmul, an attention pass).
//
// parallel_for(n, fn) runs fn(i, thread_id) for every i in [0, n) exactly once, on the caller plus
// n_threads-1 workers, and returns when all are done. Tasks are claimed from a shared counter, so a worker
// that the OS has not scheduled yet (busy or oversubscribed machine) never stalls the op: the threads that
// are running take its tasks. Results must not depend on which thread runs a task (fn gets the thread id
// only to pick per-thread scratch). Waiting is spin -> yield -> sleep on a condvar.
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

  // Jobs handed to the workers so far (parallel_for calls with more than one task on more than one
  // thread; the others run inline). For profiles; read it from the caller's thread.
  uint64_t n_dispatches() const { return n_dispatches_; }

 private:
  // Job state, double-buffered by job parity: a straggler still looking at job j can only read slot
  // j&1, which is rewritten for job j+2 -- after the claim counter has moved on, so its claim fails.
  struct Slot {
    std::atomic<const std::function<void(int64_t, int)>*> fn{nullptr};
    std::atomic<int64_t> n_tasks{0};
    std::atomic<int64_t> done{0};
  };
  void worker_main(int thread);
  // Claims and runs tasks of job `job` until none are left. Returns the number run.
  void run_tasks(uint32_t job, int thread);

  int n_threads_;
  std::vector<std::thread> workers_;
  Slot slots_[2];
  // (job << 32) | next task index: claiming a task is a CAS that also proves the job is still current.
  std::atomic<uint64_t> claim_{0};
  std::atomic<uint32_t> job_{0};
  uint64_t n_dispatches_ = 0;  // written by the caller thread only
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace frugal
