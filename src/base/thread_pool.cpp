#include "base/thread_pool.h"

#include <immintrin.h>

#include <algorithm>

#include "base/check.h"

namespace frugal {

namespace {
// Pure spinning is fastest on an idle machine, but when cores are oversubscribed a spinning waiter burns
// the quantum another thread needs; so spin briefly, then yield, then sleep.
constexpr int kSpinIterations = 2000;  // a few microseconds of pause
constexpr int kYieldIterations = 200;
inline void backoff(int iteration) {
  if (iteration < kSpinIterations) _mm_pause();
  else std::this_thread::yield();
}
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  for (int t = 1; t < n_threads_; ++t) workers_.emplace_back([this, t] { worker_main(t); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
    job_.fetch_add(1);
  }
  cv_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::run_tasks(uint32_t job, int thread) {
  Slot& slot = slots_[job & 1];
  for (;;) {
    uint64_t c = claim_.load(std::memory_order_acquire);
    if ((uint32_t)(c >> 32) != job) return;  // a newer job: ours is finished
    const auto* fn = slot.fn.load(std::memory_order_acquire);
    const int64_t n = slot.n_tasks.load(std::memory_order_acquire);
    const int64_t i = (int64_t)(c & 0xffffffffu);
    if (i >= n) return;
    if (!claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel)) continue;
    (*fn)(i, thread);
    slot.done.fetch_add(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::worker_main(int thread) {
  uint32_t seen = 0;
  for (;;) {
    uint32_t j = job_.load(std::memory_order_acquire);
    for (int it = 0; j == seen && it < kSpinIterations + kYieldIterations; ++it) {
      backoff(it);
      j = job_.load(std::memory_order_acquire);
    }
    if (j == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return job_.load() != seen; });
      j = job_.load(std::memory_order_acquire);
    }
    seen = j;
    if (stop_.load()) return;
    run_tasks(j, thread);
  }
}

void ThreadPool::parallel_for(int64_t n_tasks, const std::function<void(int64_t, int)>& fn) {
  if (n_tasks <= 0) return;
  if (n_threads_ == 1 || n_tasks == 1) {
    for (int64_t i = 0; i < n_tasks; ++i) fn(i, 0);
    return;
  }
  FRUGAL_CHECK(n_tasks < (int64_t(1) << 32));
  ++n_dispatches_;
  const uint32_t job = job_.load(std::memory_order_relaxed) + 1;
  Slot& slot = slots_[job & 1];
  slot.fn.store(&fn, std::memory_order_relaxed);
  slot.n_tasks.store(n_tasks, std::memory_order_relaxed);
  slot.done.store(0, std::memory_order_relaxed);
  claim_.store((uint64_t)job << 32, std::memory_order_release);
  {
    // The lock orders the job bump against a worker that is about to sleep.
    std::lock_guard<std::mutex> lock(mu_);
    job_.store(job, std::memory_order_release);
  }
  cv_.notify_all();
  run_tasks(job, 0);
  for (int it = 0; slot.done.load(std::memory_order_acquire) != n_tasks; ++it) backoff(it);
}

void ThreadPool::parallel_range(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn) {
  if (n <= 0) return;
  const int64_t parts = std::min<int64_t>(n_threads_, n);
  parallel_for(parts, [&](int64_t p, int thread) {
    const int64_t begin = n * p / parts, end = n * (p + 1) / parts;
    fn(begin, end, thread);
  });
}

}  // namespace frugal
