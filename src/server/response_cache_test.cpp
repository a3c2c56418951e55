#include "server/response_cache.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>
#include <unistd.h>

#include "server/usage_ledger.h"

namespace frugal {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    const ::testing::TestInfo* t = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            ("frugal_cache_test_" + std::to_string(::getpid()) + "_" + t->test_suite_name() + "_" + t->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

CachedResponse response(const std::string& text) {
  CachedResponse r;
  r.text = text;
  r.finish_reason = "stop";
  r.prompt_tokens = 12;
  r.completion_tokens = 7;
  return r;
}

std::unique_ptr<ResponseCache> open_cache(const std::string& path, ResponseCache::Options o) {
  StatusOr<std::unique_ptr<ResponseCache>> c = ResponseCache::open(path, o);
  EXPECT_TRUE(c.ok()) << c.status().message();
  return c.ok() ? std::move(c).value() : nullptr;
}

TEST(ResponseCache, PutGetRoundTrip) {
  auto c = open_cache(":memory:", {});
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->get("k", 1.0).has_value());
  CachedResponse r = response("Paris.");
  r.logprobs_json = R"({"content":[{"token":"Paris","logprob":-0.1}]})";
  r.payload_json = std::string("binary\0ok", 9);
  ASSERT_TRUE(c->put("k", r, 100.0).ok());
  std::optional<CachedResponse> got = c->get("k", 101.0);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->text, "Paris.");
  EXPECT_EQ(got->finish_reason, "stop");
  EXPECT_EQ(got->prompt_tokens, 12);
  EXPECT_EQ(got->completion_tokens, 7);
  EXPECT_EQ(got->logprobs_json, r.logprobs_json);
  EXPECT_EQ(got->payload_json, r.payload_json);
  EXPECT_EQ(got->created_s, 100.0);
  const ResponseCache::Stats s = c->stats();
  EXPECT_EQ(s.hits, 1);
  EXPECT_EQ(s.misses, 1);
  EXPECT_EQ(s.entries, 1);
  EXPECT_EQ(s.bytes, r.size_bytes("k"));
  // Empty strings survive as empty strings.
  ASSERT_TRUE(c->put("empty", CachedResponse{}, 100.0).ok());
  ASSERT_TRUE(c->get("empty", 100.0).has_value());
  EXPECT_EQ(c->get("empty", 100.0)->text, "");
}

TEST(ResponseCache, ReplaceKeepsCountsRight) {
  auto c = open_cache(":memory:", {});
  ASSERT_TRUE(c->put("k", response("short"), 1.0).ok());
  ASSERT_TRUE(c->put("k", response("a much longer answer"), 2.0).ok());
  EXPECT_EQ(c->stats().entries, 1);
  EXPECT_EQ(c->stats().bytes, response("a much longer answer").size_bytes("k"));
  EXPECT_EQ(c->get("k", 3.0)->text, "a much longer answer");
}

TEST(ResponseCache, TtlExpiry) {
  ResponseCache::Options o;
  o.ttl_s = 10;
  auto c = open_cache(":memory:", o);
  ASSERT_TRUE(c->put("a", response("A"), 100.0).ok());
  ASSERT_TRUE(c->put("b", response("B"), 105.0).ok());
  EXPECT_TRUE(c->get("a", 109.5).has_value());  // use does not extend the TTL
  EXPECT_FALSE(c->get("a", 110.0).has_value());
  EXPECT_EQ(c->stats().entries, 1);
  EXPECT_EQ(c->stats().expirations, 1);
  // A put sweeps expired entries too.
  ASSERT_TRUE(c->put("c", response("C"), 200.0).ok());
  EXPECT_EQ(c->stats().entries, 1);
  EXPECT_EQ(c->stats().expirations, 2);
  EXPECT_FALSE(c->get("b", 200.0).has_value());
  EXPECT_TRUE(c->get("c", 200.0).has_value());
}

TEST(ResponseCache, EvictsLeastRecentlyUsedByCount) {
  ResponseCache::Options o;
  o.max_entries = 3;
  o.ttl_s = 0;
  auto c = open_cache(":memory:", o);
  ASSERT_TRUE(c->put("a", response("A"), 1.0).ok());
  ASSERT_TRUE(c->put("b", response("B"), 2.0).ok());
  ASSERT_TRUE(c->put("c", response("C"), 3.0).ok());
  ASSERT_TRUE(c->get("a", 4.0).has_value());  // a is now the most recently used
  ASSERT_TRUE(c->put("d", response("D"), 5.0).ok());
  EXPECT_EQ(c->stats().evictions, 1);
  EXPECT_FALSE(c->get("b", 6.0).has_value());
  ASSERT_TRUE(c->put("e", response("E"), 7.0).ok());  // evicts c (last used 3)
  EXPECT_FALSE(c->get("c", 8.0).has_value());
  for (const char* k : {"a", "d", "e"}) EXPECT_TRUE(c->get(k, 9.0).has_value()) << k;
  EXPECT_EQ(c->stats().entries, 3);
}

TEST(ResponseCache, EvictsByBytesAndSkipsOversizedEntries) {
  const CachedResponse r = response(std::string(100, 'x'));
  const int64_t one = r.size_bytes("k1");
  ResponseCache::Options o;
  o.max_bytes = 2 * one + one / 2;
  o.max_entries = 0;
  auto c = open_cache(":memory:", o);
  ASSERT_TRUE(c->put("k1", r, 1.0).ok());
  ASSERT_TRUE(c->put("k2", r, 2.0).ok());
  ASSERT_TRUE(c->put("k3", r, 3.0).ok());
  EXPECT_EQ(c->stats().entries, 2);
  EXPECT_LE(c->stats().bytes, o.max_bytes);
  EXPECT_FALSE(c->get("k1", 4.0).has_value());
  ASSERT_TRUE(c->put("huge", response(std::string(10000, 'y')), 5.0).ok());
  EXPECT_FALSE(c->get("huge", 6.0).has_value());
  EXPECT_EQ(c->stats().entries, 2);  // nothing was evicted for it
}

TEST(ResponseCache, SurvivesCloseAndReopen) {
  TempDir dir;
  const std::string path = dir.file("cache.db");
  ResponseCache::Options o;
  o.ttl_s = 0;
  {
    auto c = open_cache(path, o);
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->put("q1", response("one"), 10.0).ok());
    ASSERT_TRUE(c->put("q2", response("two"), 11.0).ok());
    ASSERT_TRUE(c->get("q1", 12.0).has_value());
  }
  {
    auto c = open_cache(path, o);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->stats().entries, 2);
    EXPECT_EQ(c->stats().bytes, response("one").size_bytes("q1") + response("two").size_bytes("q2"));
    std::optional<CachedResponse> got = c->get("q2", 13.0);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->text, "two");
  }
  // Reopening with a smaller bound evicts the least recently used (q1 was used at 12, q2 at 13).
  o.max_entries = 1;
  auto c = open_cache(path, o);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->stats().entries, 1);
  EXPECT_TRUE(c->get("q2", 14.0).has_value());
  EXPECT_FALSE(c->get("q1", 14.0).has_value());
}

TEST(ResponseCache, BadPathsGiveClearErrors) {
  TempDir dir;
  StatusOr<std::unique_ptr<ResponseCache>> missing_dir = ResponseCache::open(dir.file("no/such/dir/c.db"), {});
  ASSERT_FALSE(missing_dir.ok());
  EXPECT_NE(missing_dir.status().message().find("no/such/dir/c.db"), std::string::npos)
      << missing_dir.status().message();
  const std::string garbage = dir.file("garbage.db");
  {
    std::ofstream f(garbage);
    for (int i = 0; i < 200; ++i) f << "this is not a sqlite database at all\n";
  }
  StatusOr<std::unique_ptr<ResponseCache>> bad = ResponseCache::open(garbage, {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(bad.status().message().find(garbage), std::string::npos) << bad.status().message();
  // A usage ledger file is not a cache.
  const std::string ledger_path = dir.file("ledger.db");
  { ASSERT_TRUE(UsageLedger::open(ledger_path).ok()); }
  StatusOr<std::unique_ptr<ResponseCache>> other = ResponseCache::open(ledger_path, {});
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("frugal-usage-ledger-1"), std::string::npos) << other.status().message();
}

TEST(ResponseCache, KeyHelper) {
  // Python: sha256(b''.join(struct.pack('<Q', len(p)) + p for p in parts)).hexdigest()
  EXPECT_EQ(cache_key({"model", "", "{\"a\":1}"}), "98f53de09ea339fcadff1156d5a9eb7a735fb53bac8cfcdfb3819100d973d84c");
  EXPECT_EQ(cache_key({}), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_NE(cache_key({"ab", "c"}), cache_key({"a", "bc"}));
  EXPECT_NE(cache_key({"a", ""}), cache_key({"a"}));
  EXPECT_EQ(cache_key({"m", "req"}).size(), 64u);
}

TEST(ResponseCache, ConcurrentUse) {
  ResponseCache::Options o;
  o.max_entries = 50;
  auto c = open_cache(":memory:", o);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const std::string k = "k" + std::to_string((i * 7 + t) % 80);
        if (i % 3 == 0) {
          EXPECT_TRUE(c->put(k, response(k), 1000.0 + i).ok());
        } else {
          std::optional<CachedResponse> r = c->get(k, 1000.0 + i);
          if (r) EXPECT_EQ(r->text, k);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  const ResponseCache::Stats s = c->stats();
  EXPECT_LE(s.entries, 50);
  EXPECT_EQ(s.hits + s.misses, 4 * 200 - 4 * 67);
  EXPECT_EQ(s.errors, 0);
}

}  // namespace
}  // namespace frugal
