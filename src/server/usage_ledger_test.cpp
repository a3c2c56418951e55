#include "server/usage_ledger.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>
#include <unistd.h>

namespace frugal {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    const ::testing::TestInfo* t = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            ("frugal_ledger_test_" + std::to_string(::getpid()) + "_" + t->test_suite_name() + "_" + t->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

UsageRecord rec(const std::string& key, double t, int64_t prompt, int64_t cached, int64_t completion, double cost,
                bool hit = false) {
  UsageRecord r;
  r.key_name = key;
  r.time_s = t;
  r.route = "/v1/chat/completions";
  r.prompt_tokens = prompt;
  r.cached_tokens = cached;
  r.completion_tokens = completion;
  r.cost_usd = cost;
  r.finish_reason = "stop";
  r.cache_hit = hit;
  return r;
}

TEST(UsageLedger, SummarizesPerKeyWithinTheInterval) {
  StatusOr<std::unique_ptr<UsageLedger>> l = UsageLedger::open(":memory:");
  ASSERT_TRUE(l.ok()) << l.status().message();
  UsageLedger& ledger = **l;
  ledger.record(rec("bob", 100, 10, 0, 5, 0.25));
  ledger.record(rec("alice", 101, 20, 8, 7, 0.5, true));
  ledger.record(rec("bob", 150, 30, 16, 9, 0.125));
  ledger.record(rec("bob", 200, 1000, 0, 1000, 100));  // at until: excluded
  ledger.record(rec("", 120, 1, 0, 1, 0));            // open server: key "-"
  ledger.record(rec("alice", 99, 1000, 0, 1000, 100)); // before since: excluded
  StatusOr<std::vector<UsageSummary>> s = ledger.summarize(100, 200);
  ASSERT_TRUE(s.ok()) << s.status().message();
  ASSERT_EQ(s->size(), 3u);
  EXPECT_EQ((*s)[0].key_name, "-");
  const UsageSummary& alice = (*s)[1];
  EXPECT_EQ(alice.key_name, "alice");
  EXPECT_EQ(alice.requests, 1);
  EXPECT_EQ(alice.prompt_tokens, 20);
  EXPECT_EQ(alice.cached_tokens, 8);
  EXPECT_EQ(alice.completion_tokens, 7);
  EXPECT_EQ(alice.cache_hits, 1);
  EXPECT_DOUBLE_EQ(alice.cost_usd, 0.5);
  const UsageSummary& bob = (*s)[2];
  EXPECT_EQ(bob.key_name, "bob");
  EXPECT_EQ(bob.requests, 2);
  EXPECT_EQ(bob.prompt_tokens, 40);
  EXPECT_EQ(bob.cached_tokens, 16);
  EXPECT_EQ(bob.completion_tokens, 14);
  EXPECT_EQ(bob.cache_hits, 0);
  EXPECT_DOUBLE_EQ(bob.cost_usd, 0.375);
  EXPECT_EQ(bob.first_s, 100);
  EXPECT_EQ(bob.last_s, 150);
  EXPECT_TRUE(ledger.flush().ok());
  EXPECT_EQ(ledger.stats().recorded, 6);
  EXPECT_EQ(ledger.stats().written, 6);
}

TEST(UsageLedger, DestructorWritesTheQueueAndReopenReadsIt) {
  TempDir dir;
  const std::string path = dir.file("usage.db");
  {
    StatusOr<std::unique_ptr<UsageLedger>> l = UsageLedger::open(path);
    ASSERT_TRUE(l.ok()) << l.status().message();
    for (int i = 0; i < 500; ++i) (*l)->record(rec(i % 2 ? "odd" : "even", 1000 + i, 3, 1, 2, 0.001));
    // no flush: the destructor must write everything
  }
  {
    UsageLedger::Options ro;
    ro.read_only = true;
    StatusOr<std::unique_ptr<UsageLedger>> l = UsageLedger::open(path, ro);
    ASSERT_TRUE(l.ok()) << l.status().message();
    StatusOr<std::vector<UsageSummary>> s = (*l)->summarize(0, 1e12);
    ASSERT_TRUE(s.ok()) << s.status().message();
    ASSERT_EQ(s->size(), 2u);
    EXPECT_EQ((*s)[0].key_name, "even");
    EXPECT_EQ((*s)[0].requests, 250);
    EXPECT_EQ((*s)[1].prompt_tokens, 750);
    EXPECT_EQ((*s)[1].completion_tokens, 500);
    EXPECT_NEAR((*s)[1].cost_usd, 0.25, 1e-9);
  }
  // Appending after reopen keeps the old rows.
  {
    StatusOr<std::unique_ptr<UsageLedger>> l = UsageLedger::open(path);
    ASSERT_TRUE(l.ok());
    (*l)->record(rec("even", 5000, 1, 0, 1, 0));
    StatusOr<std::vector<UsageSummary>> s = (*l)->summarize(0, 1e12);
    ASSERT_TRUE(s.ok());
    EXPECT_EQ((*s)[0].requests, 251);
  }
}

TEST(UsageLedger, ConcurrentRecorders) {
  StatusOr<std::unique_ptr<UsageLedger>> l = UsageLedger::open(":memory:");
  ASSERT_TRUE(l.ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 400; ++i) (*l)->record(rec("k" + std::to_string(t), 10, 1, 0, 2, 0));
    });
  }
  for (auto& th : threads) th.join();
  StatusOr<std::vector<UsageSummary>> s = (*l)->summarize(0, 100);
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->size(), 4u);
  for (const UsageSummary& u : *s) {
    EXPECT_EQ(u.requests, 400) << u.key_name;
    EXPECT_EQ(u.completion_tokens, 800);
  }
}

TEST(UsageLedger, FullQueueDropsAndCounts) {
  UsageLedger::Options o;
  o.max_queue = 0;
  StatusOr<std::unique_ptr<UsageLedger>> l = UsageLedger::open(":memory:", o);
  ASSERT_TRUE(l.ok());
  (*l)->record(rec("a", 1, 1, 0, 1, 0));
  EXPECT_TRUE((*l)->flush().ok());
  EXPECT_EQ((*l)->stats().dropped, 1);
  EXPECT_EQ((*l)->stats().written, 0);
  EXPECT_TRUE((*l)->summarize(0, 10)->empty());
}

TEST(UsageLedger, OpenErrors) {
  TempDir dir;
  UsageLedger::Options ro;
  ro.read_only = true;
  StatusOr<std::unique_ptr<UsageLedger>> missing = UsageLedger::open(dir.file("absent.db"), ro);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("absent.db"), std::string::npos) << missing.status().message();
  EXPECT_FALSE(fs::exists(dir.file("absent.db")));  // read-only never creates
  StatusOr<std::unique_ptr<UsageLedger>> no_dir = UsageLedger::open(dir.file("x/y/usage.db"));
  ASSERT_FALSE(no_dir.ok());
  EXPECT_NE(no_dir.status().message().find("x/y/usage.db"), std::string::npos);
}

TEST(UsageLedger, TimeSpecs) {
  const double now = 1700000000;
  EXPECT_EQ(*parse_time_spec("--since", "24h", now), now - 86400);
  EXPECT_EQ(*parse_time_spec("--since", "90s", now), now - 90);
  EXPECT_EQ(*parse_time_spec("--since", "15m", now), now - 900);
  EXPECT_EQ(*parse_time_spec("--since", "7d", now), now - 7 * 86400);
  EXPECT_EQ(*parse_time_spec("--since", "2w", now), now - 14 * 86400);
  EXPECT_EQ(*parse_time_spec("--since", "1.5h", now), now - 5400);
  EXPECT_EQ(*parse_time_spec("--since", "now", now), now);
  EXPECT_EQ(*parse_time_spec("--since", "@1600000000", now), 1600000000);
  // Values from Python's calendar.timegm.
  EXPECT_EQ(*parse_time_spec("--since", "2025-01-31", now), 1738281600);
  EXPECT_EQ(*parse_time_spec("--since", "2024-02-29T12:30:15Z", now), 1709209815);
  EXPECT_EQ(*parse_time_spec("--since", "2024-02-29 12:30:15", now), 1709209815);
  EXPECT_EQ(*parse_time_spec("--since", "2024-02-29T12:30", now), 1709209800);
  EXPECT_EQ(*parse_time_spec("--since", "1969-12-31", now), -86400);
  for (const char* bad : {"", "h", "-5h", "5x", "2023-02-29", "2024-13-01", "2024-1-01", "2024-01-01T25:00",
                          "2024-01-01Tnoon", "yesterday", "@", "@12z"}) {
    StatusOr<double> r = parse_time_spec("--since", bad, now);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) EXPECT_NE(r.status().message().find("--since"), std::string::npos);
  }
}

}  // namespace
}  // namespace frugal
