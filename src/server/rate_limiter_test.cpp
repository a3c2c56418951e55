#include "server/rate_limiter.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "base/rng.h"

namespace frugal {
namespace {

ApiKey key(const std::string& name, int64_t rpm, int64_t tpm, int64_t conc) {
  return ApiKey{"secret-" + name, name, KeyLimits{rpm, tpm, conc}};
}

TEST(RateLimiter, RequestsPerMinuteSlidingWindow) {
  RateLimiter rl;
  const ApiKey k = key("a", 2, 0, 0);
  EXPECT_TRUE(rl.admit(k, 0, 0.0).allowed);
  EXPECT_TRUE(rl.admit(k, 0, 10.0).allowed);
  RateLimiter::Decision d = rl.admit(k, 0, 20.0);
  EXPECT_FALSE(d.allowed);
  EXPECT_DOUBLE_EQ(d.retry_after_s, 40.0);  // the request at t=0 leaves the window at t=60
  EXPECT_NE(d.reason.find("2 requests per minute"), std::string::npos) << d.reason;
  EXPECT_NE(d.reason.find("'a'"), std::string::npos);
  EXPECT_FALSE(rl.admit(k, 0, 59.5).allowed);
  EXPECT_TRUE(rl.admit(k, 0, 60.0).allowed);
  d = rl.admit(k, 0, 61.0);  // window holds t=10 and t=60
  EXPECT_FALSE(d.allowed);
  EXPECT_DOUBLE_EQ(d.retry_after_s, 9.0);
}

TEST(RateLimiter, RefusalsDoNotCount) {
  RateLimiter rl;
  const ApiKey k = key("a", 1, 0, 0);
  EXPECT_TRUE(rl.admit(k, 0, 0.0).allowed);
  for (int i = 1; i < 50; ++i) EXPECT_FALSE(rl.admit(k, 0, (double)i).allowed);
  EXPECT_TRUE(rl.admit(k, 0, 60.0).allowed);
}

TEST(RateLimiter, TokensPerMinuteWithCorrection) {
  RateLimiter rl;
  const ApiKey k = key("t", 0, 100, 0);
  RateLimiter::Decision a = rl.admit(k, 60, 0.0);
  ASSERT_TRUE(a.allowed);
  EXPECT_EQ(rl.tokens_in_window("t", 0.0), 60);
  RateLimiter::Decision b = rl.admit(k, 50, 1.0);
  EXPECT_FALSE(b.allowed);
  EXPECT_DOUBLE_EQ(b.retry_after_s, 59.0);
  EXPECT_NE(b.reason.find("100 tokens per minute"), std::string::npos) << b.reason;
  // The request used only 30 tokens: the estimate of 60 at t=0 becomes 30 at t=5.
  rl.finish(k, a.ticket, 30, 5.0);
  EXPECT_EQ(rl.tokens_in_window("t", 5.0), 30);
  RateLimiter::Decision c = rl.admit(k, 50, 6.0);
  ASSERT_TRUE(c.allowed);
  EXPECT_EQ(rl.tokens_in_window("t", 6.0), 80);
  RateLimiter::Decision d = rl.admit(k, 30, 7.0);
  EXPECT_FALSE(d.allowed);
  EXPECT_DOUBLE_EQ(d.retry_after_s, 58.0);  // the 30 charged at t=5 leave at t=65
  EXPECT_TRUE(rl.admit(k, 30, 65.0).allowed);
  EXPECT_EQ(rl.tokens_in_window("t", 65.0), 80);
}

TEST(RateLimiter, OversizedEstimateWaitsForAnEmptyWindowThenTakesItAll) {
  RateLimiter rl;
  const ApiKey k = key("big", 0, 100, 0);
  RateLimiter::Decision a = rl.admit(k, 10, 0.0);
  ASSERT_TRUE(a.allowed);
  RateLimiter::Decision b = rl.admit(k, 1000, 1.0);
  EXPECT_FALSE(b.allowed);
  EXPECT_DOUBLE_EQ(b.retry_after_s, 59.0);
  RateLimiter::Decision c = rl.admit(k, 1000, 60.0);
  ASSERT_TRUE(c.allowed);
  EXPECT_EQ(rl.tokens_in_window("big", 60.0), 100);
  // It actually used 400: the next request waits until that charge (at t=70) leaves the window.
  rl.finish(k, c.ticket, 400, 70.0);
  RateLimiter::Decision d = rl.admit(k, 1, 71.0);
  EXPECT_FALSE(d.allowed);
  EXPECT_DOUBLE_EQ(d.retry_after_s, 59.0);
}

TEST(RateLimiter, ConcurrencyLimit) {
  RateLimiter rl;
  const ApiKey k = key("c", 0, 0, 2);
  RateLimiter::Decision a = rl.admit(k, 5, 0.0), b = rl.admit(k, 5, 0.0);
  ASSERT_TRUE(a.allowed && b.allowed);
  EXPECT_NE(a.ticket, b.ticket);
  EXPECT_EQ(rl.in_flight("c"), 2);
  RateLimiter::Decision c = rl.admit(k, 5, 0.5);
  EXPECT_FALSE(c.allowed);
  EXPECT_GE(c.retry_after_s, 1.0);
  EXPECT_NE(c.reason.find("concurrent"), std::string::npos) << c.reason;
  rl.finish(k, a.ticket, 5, 1.0);
  EXPECT_EQ(rl.in_flight("c"), 1);
  EXPECT_TRUE(rl.admit(k, 5, 1.0).allowed);
}

TEST(RateLimiter, SeveralLimitsReportTheLongestWait) {
  RateLimiter rl;
  const ApiKey k = key("m", 1, 0, 1);
  ASSERT_TRUE(rl.admit(k, 0, 0.0).allowed);
  RateLimiter::Decision d = rl.admit(k, 0, 30.0);
  EXPECT_FALSE(d.allowed);
  EXPECT_DOUBLE_EQ(d.retry_after_s, 30.0);
  EXPECT_NE(d.reason.find("concurrent"), std::string::npos);
  EXPECT_NE(d.reason.find("requests per minute"), std::string::npos);
}

TEST(RateLimiter, KeysAreIndependentAndUnlimitedKeysAlwaysPass) {
  RateLimiter rl;
  const ApiKey a = key("a", 1, 0, 0), b = key("b", 1, 0, 0), free = key("free", 0, 0, 0);
  EXPECT_TRUE(rl.admit(a, 0, 0.0).allowed);
  EXPECT_TRUE(rl.admit(b, 0, 0.0).allowed);
  EXPECT_FALSE(rl.admit(a, 0, 1.0).allowed);
  for (int i = 0; i < 100; ++i) {
    RateLimiter::Decision d = rl.admit(free, 1000000, 0.0);
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.ticket, 0u);
    rl.finish(free, d.ticket, 5, 0.0);  // a no-op
  }
  EXPECT_EQ(rl.in_flight("free"), 0);
}

// Seeded random schedule on an integer clock (exact arithmetic): whenever a request is refused only by
// the rpm/tpm windows, it must still be refused just before now + retry_after_s and admitted at exactly
// that time (nothing else changes in between: refusals do not alter the state).
TEST(RateLimiter, RetryAfterIsTheExactWaitFuzz) {
  Rng rng(1234);
  for (int round = 0; round < 20; ++round) {
    RateLimiter rl;
    const ApiKey k = key("f", 1 + (int64_t)(rng.next_u64() % 5), 50 + (int64_t)(rng.next_u64() % 200), 0);
    std::vector<uint64_t> open;
    double now = 0;
    int checked = 0;
    for (int step = 0; step < 300; ++step) {
      now += (double)(rng.next_u64() % 7);
      if (!open.empty() && rng.next_u64() % 3 == 0) {
        const size_t i = rng.next_u64() % open.size();
        rl.finish(k, open[i], (int64_t)(rng.next_u64() % 120), now);
        open.erase(open.begin() + (long)i);
        continue;
      }
      const int64_t est = (int64_t)(rng.next_u64() % 100);
      RateLimiter::Decision d = rl.admit(k, est, now);
      if (d.allowed) {
        open.push_back(d.ticket);
        continue;
      }
      ASSERT_GT(d.retry_after_s, 0.0);
      ASSERT_EQ(d.retry_after_s, std::floor(d.retry_after_s));  // integer clock
      if (d.retry_after_s >= 1.0) {
        EXPECT_FALSE(rl.admit(k, est, now + d.retry_after_s - 0.5).allowed) << "round " << round << " step " << step;
      }
      now += d.retry_after_s;
      RateLimiter::Decision again = rl.admit(k, est, now);
      ASSERT_TRUE(again.allowed) << "round " << round << " step " << step << ": " << again.reason;
      open.push_back(again.ticket);
      ++checked;
    }
    EXPECT_GT(checked, 0);
    for (uint64_t t : open) rl.finish(k, t, 0, now);
    EXPECT_EQ(rl.in_flight("f"), 0);
  }
}

}  // namespace
}  // namespace frugal
