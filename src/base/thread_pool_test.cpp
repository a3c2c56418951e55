#include "base/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace frugal {
namespace {

// Every task runs exactly once per call, over many back-to-back jobs (stragglers from one job must
// never run or skip tasks of the next), for pools larger than the machine's core count too.
TEST(ThreadPool, EveryTaskExactlyOnce) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    for (int iter = 0; iter < 2000; ++iter) {
      const int64_t n = 1 + (iter * 7) % 37;
      std::vector<std::atomic<int>> hits(n);
      std::atomic<int> bad_thread{0};
      pool.parallel_for(n, [&](int64_t i, int t) {
        hits[i].fetch_add(1);
        if (t < 0 || t >= threads) bad_thread.fetch_add(1);
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "threads " << threads << " iter " << iter;
      ASSERT_EQ(bad_thread.load(), 0);
    }
  }
}

TEST(ThreadPool, RangesCoverEverythingOnce) {
  ThreadPool pool(3);
  for (int64_t n : {0, 1, 2, 3, 4, 10, 1001}) {
    std::vector<int> hits(n);
    pool.parallel_range(n, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) hits[i]++;
    });
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i], 1);
  }
}

TEST(ThreadPool, PerThreadScratchIsNotShared) {
  ThreadPool pool(4);
  std::vector<int64_t> scratch(4, 0);
  int64_t total = 0;
  for (int iter = 0; iter < 100; ++iter) {
    pool.parallel_for(64, [&](int64_t i, int t) { scratch[t] += i; });
  }
  for (int64_t s : scratch) total += s;
  EXPECT_EQ(total, 100 * (63 * 64 / 2));
}

}  // namespace
}  // namespace frugal
