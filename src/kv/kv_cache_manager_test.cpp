#include "kv/kv_cache_manager.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <map>
#include <numeric>
#include <vector>

namespace frugal {
namespace {

using Ids = std::vector<BlockId>;
using Tokens = std::vector<int32_t>;

Tokens iota_tokens(int32_t n, int32_t start) {
  Tokens t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), start);
  return t;
}

Tokens concat(Tokens a, const Tokens& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Admits `seq` with its prompt the way the engine does: find_prefix, then allocate room for the prompt.
bool admit(KvCacheManager& m, SeqId seq, const Tokens& prompt, uint64_t salt, PrefixHit* hit_out = nullptr) {
  const PrefixHit hit = m.find_prefix(prompt, salt);
  if (hit_out) *hit_out = hit;
  return m.allocate(seq, static_cast<int64_t>(prompt.size()), &hit);
}

std::vector<int32_t> refs(const KvCacheManager& m) {
  std::vector<int32_t> r;
  for (BlockId b = 0; b < m.n_blocks(); ++b) r.push_back(m.pool().ref_count(b));
  return r;
}

TEST(KvCacheManager, AllocateGrowAndFreeOrdering) {
  KvCacheManager m(10, 4, true);
  EXPECT_EQ(m.block_size(), 4);
  EXPECT_EQ(m.n_blocks(), 10);
  ASSERT_TRUE(m.allocate(1, 10, nullptr));
  ASSERT_TRUE(m.allocate(2, 5, nullptr));
  EXPECT_EQ(m.block_table(1), (Ids{0, 1, 2}));
  EXPECT_EQ(m.block_table(2), (Ids{3, 4}));
  EXPECT_EQ(m.pool().free_list(), (Ids{5, 6, 7, 8, 9}));
  EXPECT_DOUBLE_EQ(m.usage(), 0.5);
  ASSERT_TRUE(m.allocate(1, 12, nullptr));  // still fits in 3 blocks
  ASSERT_TRUE(m.allocate(1, 3, nullptr));   // never shrinks
  EXPECT_EQ(m.block_table(1), (Ids{0, 1, 2}));
  ASSERT_TRUE(m.allocate(1, 13, nullptr));
  EXPECT_EQ(m.block_table(1), (Ids{0, 1, 2, 5}));
  m.check_invariants();
  m.free(1);  // last block first: the tail of the free list gets 5, 2, 1, 0
  EXPECT_FALSE(m.has(1));
  EXPECT_TRUE(m.block_table(1).empty());
  EXPECT_EQ(m.pool().free_list(), (Ids{6, 7, 8, 9, 5, 2, 1, 0}));
  EXPECT_EQ(m.n_free_blocks(), 8);
  m.free(99);  // unknown: no-op
  m.free(2);
  EXPECT_EQ(m.pool().free_list(), (Ids{6, 7, 8, 9, 5, 2, 1, 0, 4, 3}));
  EXPECT_DOUBLE_EQ(m.usage(), 0.0);
  m.check_invariants();
}

TEST(KvCacheManager, SecondSequenceWithSamePrefixSharesBlocks) {
  KvCacheManager m(10, 4, true);
  const Tokens a = iota_tokens(10, 0);
  PrefixHit hit;
  ASSERT_TRUE(admit(m, 1, a, 0, &hit));
  EXPECT_TRUE(hit.blocks.empty());
  EXPECT_EQ(m.block_table(1), (Ids{0, 1, 2}));
  m.cache_computed(1, a, 10, 0);  // blocks 0 and 1 are full
  EXPECT_EQ(m.pool().n_cached(), 2);
  EXPECT_TRUE(m.pool().hash(0).has_value());
  EXPECT_TRUE(m.pool().hash(1).has_value());
  EXPECT_FALSE(m.pool().hash(2).has_value());

  const Tokens b = concat(Tokens(a.begin(), a.begin() + 8), {100, 101, 102});
  ASSERT_TRUE(admit(m, 2, b, 0, &hit));
  EXPECT_EQ(hit.blocks, (Ids{0, 1}));
  EXPECT_EQ(hit.n_tokens, 8);  // only tokens 8..10 are computed
  EXPECT_EQ(m.block_table(2), (Ids{0, 1, 3}));
  EXPECT_EQ(refs(m), (std::vector<int32_t>{2, 2, 1, 1, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(m.pool().free_list(), (Ids{4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(m.prefix_queries(), 21);
  EXPECT_EQ(m.prefix_hits(), 8);
  m.cache_computed(2, b, 11, 0);  // nothing new is full
  EXPECT_EQ(m.pool().n_cached(), 2);
  m.check_invariants();

  m.free(1);
  EXPECT_EQ(refs(m), (std::vector<int32_t>{1, 1, 0, 1, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(m.pool().free_list(), (Ids{4, 5, 6, 7, 8, 9, 2}));
  m.free(2);
  EXPECT_EQ(m.pool().free_list(), (Ids{4, 5, 6, 7, 8, 9, 2, 3, 1, 0}));
  EXPECT_EQ(m.pool().n_cached(), 2);  // freed blocks keep their cache entries
  m.check_invariants();

  // The prefix is still there after both are gone; a different salt misses it.
  EXPECT_EQ(m.find_prefix(b, 0).blocks, (Ids{0, 1}));
  EXPECT_TRUE(m.find_prefix(b, 1).blocks.empty());
  EXPECT_EQ(m.prefix_queries(), 43);
  EXPECT_EQ(m.prefix_hits(), 16);
}

TEST(KvCacheManager, HitIsCappedBeforeTheLastToken) {
  KvCacheManager m(10, 4, true);
  const Tokens p = iota_tokens(8, 0);  // exactly 2 full blocks
  ASSERT_TRUE(admit(m, 1, p, 0));
  m.cache_computed(1, p, 8, 0);
  EXPECT_EQ(m.pool().n_cached(), 2);
  PrefixHit hit = m.find_prefix(p, 0);
  EXPECT_EQ(hit.blocks, (Ids{0}));
  EXPECT_EQ(hit.n_tokens, 4);
  hit = m.find_prefix(concat(p, {8}), 0);
  EXPECT_EQ(hit.blocks, (Ids{0, 1}));
  EXPECT_TRUE(m.find_prefix(Tokens{0, 1, 2, 3}, 0).blocks.empty());
  EXPECT_TRUE(m.find_prefix(Tokens{}, 0).blocks.empty());
  EXPECT_TRUE(m.find_prefix(Tokens{0, 1, 2, 9, 4}, 0).blocks.empty());  // first block differs
}

TEST(KvCacheManager, EvictionAndFailedAllocateChangesNothing) {
  KvCacheManager m(4, 4, true);
  const Tokens p = iota_tokens(8, 0);
  ASSERT_TRUE(admit(m, 1, p, 0));
  m.cache_computed(1, p, 8, 0);
  m.free(1);
  EXPECT_EQ(m.pool().free_list(), (Ids{2, 3, 1, 0}));
  ASSERT_TRUE(m.allocate(2, 12, nullptr));  // takes 2, 3 and evicts cached block 1
  EXPECT_EQ(m.block_table(2), (Ids{2, 3, 1}));
  EXPECT_EQ(m.pool().n_cached(), 1);
  const Tokens q = concat(p, {8});
  PrefixHit hit = m.find_prefix(q, 0);
  EXPECT_EQ(hit.blocks, (Ids{0}));  // block 1 is gone

  // Room: 1 free block, but it is the hit block itself, so a 2-block sequence does not fit.
  const std::vector<BlockId> free_before = m.pool().free_list();
  const std::vector<int32_t> refs_before = refs(m);
  EXPECT_FALSE(m.allocate(3, 5, &hit));
  EXPECT_FALSE(m.has(3));
  EXPECT_EQ(m.pool().free_list(), free_before);
  EXPECT_EQ(refs(m), refs_before);
  EXPECT_EQ(m.pool().n_cached(), 1);
  EXPECT_FALSE(m.allocate(2, 17, nullptr));  // growth beyond the pool fails too
  EXPECT_EQ(m.block_table(2), (Ids{2, 3, 1}));
  EXPECT_EQ(m.pool().free_list(), free_before);
  m.check_invariants();
  EXPECT_TRUE(m.allocate(3, 4, &hit));  // exactly the hit block
  EXPECT_EQ(m.block_table(3), (Ids{0}));
  EXPECT_EQ(m.n_free_blocks(), 0);
  m.check_invariants();
}

TEST(KvCacheManager, HitBlocksOnTheFreeListCountAgainstAvailability) {
  KvCacheManager m(4, 4, true);
  const Tokens p = iota_tokens(12, 0);
  ASSERT_TRUE(admit(m, 1, p, 0));
  m.cache_computed(1, p, 12, 0);
  m.free(1);
  EXPECT_EQ(m.pool().free_list(), (Ids{3, 2, 1, 0}));
  const PrefixHit hit = m.find_prefix(concat(p, {12}), 0);
  ASSERT_EQ(hit.blocks, (Ids{0, 1, 2}));
  EXPECT_FALSE(m.allocate(2, 17, &hit));  // 2 fresh blocks needed, only block 3 is not a hit block
  EXPECT_EQ(m.pool().free_list(), (Ids{3, 2, 1, 0}));
  EXPECT_EQ(refs(m), (std::vector<int32_t>{0, 0, 0, 0}));
  ASSERT_TRUE(m.allocate(2, 16, &hit));
  EXPECT_EQ(m.block_table(2), (Ids{0, 1, 2, 3}));
  EXPECT_EQ(m.pool().n_cached(), 3);
  m.check_invariants();
}

TEST(KvCacheManager, ConcurrentTwinsChainThroughTheFirstRegisteredCopy) {
  KvCacheManager m(16, 4, true);
  const Tokens s = iota_tokens(8, 0);
  const Tokens x = concat(s, {50, 51, 52, 53, 60});
  const Tokens y = concat(s, {70, 71, 72, 73, 80});
  ASSERT_TRUE(admit(m, 1, x, 0));  // both admitted before either computed: no hits
  ASSERT_TRUE(admit(m, 2, y, 0));
  EXPECT_EQ(m.block_table(1), (Ids{0, 1, 2, 3}));
  EXPECT_EQ(m.block_table(2), (Ids{4, 5, 6, 7}));
  m.cache_computed(1, x, 13, 0);
  m.cache_computed(2, y, 13, 0);
  EXPECT_EQ(m.pool().n_cached(), 4);  // 0, 1, 2 and 6; 4 and 5 are twins of 0 and 1
  EXPECT_FALSE(m.pool().hash(4).has_value());
  EXPECT_FALSE(m.pool().hash(5).has_value());
  EXPECT_TRUE(m.pool().hash(6).has_value());
  EXPECT_EQ(m.find_prefix(y, 0).blocks, (Ids{0, 1, 6}));
  EXPECT_EQ(m.find_prefix(x, 0).blocks, (Ids{0, 1, 2}));
  m.check_invariants();
}

TEST(KvCacheManager, TwinWhoseCanonicalParentWasEvictedIsNotReachable) {
  KvCacheManager m(8, 4, true);
  const Tokens s = iota_tokens(8, 0);
  const Tokens x = concat(s, {60});
  const Tokens y = concat(s, {70, 71, 72, 73, 80});
  ASSERT_TRUE(admit(m, 1, x, 0));
  ASSERT_TRUE(admit(m, 2, y, 0));
  EXPECT_EQ(m.block_table(1), (Ids{0, 1, 2}));
  EXPECT_EQ(m.block_table(2), (Ids{3, 4, 5, 6}));
  m.cache_computed(1, x, 9, 0);
  m.cache_computed(2, y, 13, 0);  // 5 is cached as the child of block 1's registration
  EXPECT_EQ(m.pool().n_cached(), 3);
  m.free(1);
  ASSERT_TRUE(m.allocate(3, 12, nullptr));  // evicts block 1
  EXPECT_EQ(m.block_table(3), (Ids{7, 2, 1}));
  m.free(3);
  EXPECT_EQ(m.pool().free_list(), (Ids{0, 1, 2, 7}));
  PrefixHit hit;
  ASSERT_TRUE(admit(m, 4, y, 0, &hit));
  EXPECT_EQ(hit.blocks, (Ids{0}));
  EXPECT_EQ(m.block_table(4), (Ids{0, 1, 2, 7}));
  m.cache_computed(4, y, 13, 0);  // registers 1 anew; block 5 holds the next hash under a dead parent
  EXPECT_TRUE(m.pool().hash(1).has_value());
  EXPECT_FALSE(m.pool().hash(2).has_value());
  // Block 5's KV was computed after block 4 (a twin of the evicted registration), not after the new
  // block 1: the chain must not reach it even though hash and tokens match.
  EXPECT_EQ(m.find_prefix(concat(y, {81}), 0).blocks, (Ids{0, 1}));
  m.check_invariants();
}

TEST(KvCacheManager, PrefixCachingOff) {
  KvCacheManager m(6, 4, false);
  const Tokens p = iota_tokens(9, 0);
  ASSERT_TRUE(admit(m, 1, p, 0));
  m.cache_computed(1, p, 9, 0);
  EXPECT_EQ(m.pool().n_cached(), 0);
  EXPECT_TRUE(m.find_prefix(p, 0).blocks.empty());
  EXPECT_EQ(m.prefix_queries(), 0);
  EXPECT_EQ(m.prefix_hits(), 0);
  m.check_invariants();
}

TEST(KvCacheManagerDeathTest, StaleHitAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  KvCacheManager m(2, 4, true);
  const Tokens p = iota_tokens(5, 0);
  ASSERT_TRUE(admit(m, 1, p, 0));
  m.cache_computed(1, p, 5, 0);
  m.free(1);
  const PrefixHit hit = m.find_prefix(p, 0);
  ASSERT_EQ(hit.blocks, (Ids{0}));
  ASSERT_TRUE(m.allocate(2, 8, nullptr));  // evicts block 0 after the lookup
  EXPECT_DEATH(m.allocate(3, 5, &hit), "stale prefix hit");
}


// ---- seeded random fuzz ---------------------------------------------------------------------------------

class Rng {  // splitmix64: the same sequence on every platform
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  int64_t below(int64_t n) { return static_cast<int64_t>(next() % static_cast<uint64_t>(n)); }
  Tokens tokens(int64_t n, int32_t alphabet) {
    Tokens t;
    for (int64_t i = 0; i < n; ++i) t.push_back(static_cast<int32_t>(below(alphabet)));
    return t;
  }

 private:
  uint64_t state_;
};

// Simulates the engine against KvCacheManager and a shadow of what each block's KV holds (the salt and
// the whole token prefix it was computed after), and checks every prefix hit returns exactly the KV of
// the prompt's prefix.
class Fuzzer {
 public:
  static constexpr int32_t kBlocks = 40, kBs = 4;
  Fuzzer() : rng_(20240601), m_(kBlocks, kBs, true), shadow_(kBlocks) {
    for (int64_t len : {0, 9, 14}) bases_.push_back(rng_.tokens(len, 4));
  }

  void step() {
    const int64_t op = rng_.below(100);
    if (op < 30) admit();
    else if (op < 55) grow();
    else if (op < 85) compute();
    else release();
    check();
  }

  int64_t failed_allocs = 0, shared_hits = 0, free_list_hits = 0;
  const KvCacheManager& manager() const { return m_; }

 private:
  struct Live {
    Tokens tokens;  // prompt + all the output it will produce
    uint64_t salt = 0;
    int64_t n_alloc = 0, n_computed = 0;
    Ids table;  // last seen block table
  };
  struct Content {
    bool valid = false;
    uint64_t salt = 0;
    Tokens prefix;
  };

  void admit() {
    if (live_.size() >= 10) return;
    Tokens prompt = concat(bases_[rng_.below(3)], rng_.tokens(1 + rng_.below(10), 2));
    const uint64_t salt = rng_.below(4) == 0 ? 1 : 0;
    const PrefixHit hit = m_.find_prefix(prompt, salt);
    for (size_t i = 0; i < hit.blocks.size(); ++i) {
      const Content& c = shadow_[hit.blocks[i]];
      ASSERT_TRUE(c.valid);
      ASSERT_EQ(c.salt, salt);
      ASSERT_EQ(c.prefix, Tokens(prompt.begin(), prompt.begin() + (i + 1) * kBs)) << "wrong KV reused";
      if (m_.pool().ref_count(hit.blocks[i]) > 0) ++shared_hits; else ++free_list_hits;
    }
    Live s;
    s.salt = salt;
    s.n_alloc = std::min<int64_t>(prompt.size() + rng_.below(4), prompt.size() + 20);
    s.tokens = concat(prompt, rng_.tokens(20, 2));
    s.n_computed = hit.n_tokens;
    const SeqId id = next_id_++;
    if (!allocate_or_nothing(id, s.n_alloc, &hit)) return;
    s.table = m_.block_table(id);
    ASSERT_EQ(Ids(s.table.begin(), s.table.begin() + hit.blocks.size()), hit.blocks);
    live_.emplace(id, std::move(s));
  }

  void grow() {
    if (live_.empty()) return;
    auto& [id, s] = pick();
    const int64_t n_new = std::min<int64_t>(s.n_alloc + 1 + rng_.below(6), s.tokens.size());
    if (allocate_or_nothing(id, n_new, nullptr)) s.n_alloc = std::max(s.n_alloc, n_new);
  }

  void compute() {
    if (live_.empty()) return;
    auto& [id, s] = pick();
    if (s.n_computed >= s.n_alloc) return;
    const int64_t c1 = s.n_computed + 1 + rng_.below(s.n_alloc - s.n_computed);
    for (int64_t p = s.n_computed; p < c1; ++p) {
      const BlockId b = s.table[p / kBs];
      ASSERT_EQ(m_.pool().ref_count(b), 1) << "writing KV into a shared block";
      if (p % kBs == 0) shadow_[b] = Content{};
      if (p % kBs == kBs - 1) shadow_[b] = Content{true, s.salt, Tokens(s.tokens.begin(), s.tokens.begin() + p + 1)};
    }
    s.n_computed = c1;
    m_.cache_computed(id, s.tokens, c1, s.salt);
  }

  void release() {
    if (live_.empty()) return;
    const SeqId id = pick().first;
    m_.free(id);
    live_.erase(id);
  }

  std::pair<const SeqId, Live>& pick() {
    auto it = live_.begin();
    std::advance(it, rng_.below(static_cast<int64_t>(live_.size())));
    return *it;
  }

  bool allocate_or_nothing(SeqId id, int64_t n_total, const PrefixHit* hit) {
    const Ids free_before = m_.pool().free_list();
    const std::vector<int32_t> refs_before = refs(m_);
    const int64_t cached_before = m_.pool().n_cached();
    const Ids table_before = m_.block_table(id);
    if (m_.allocate(id, n_total, hit)) return true;
    ++failed_allocs;
    EXPECT_EQ(m_.pool().free_list(), free_before);
    EXPECT_EQ(refs(m_), refs_before);
    EXPECT_EQ(m_.pool().n_cached(), cached_before);
    EXPECT_EQ(m_.block_table(id), table_before);
    return false;
  }

  void check() {
    m_.check_invariants();
    std::vector<int32_t> holders(kBlocks, 0);
    for (auto& [id, s] : live_) {
      const Ids& table = m_.block_table(id);
      ASSERT_EQ(static_cast<int64_t>(table.size()), (s.n_alloc + kBs - 1) / kBs);
      ASSERT_GE(table.size(), s.table.size());
      ASSERT_EQ(Ids(table.begin(), table.begin() + s.table.size()), s.table) << "block table changed";
      s.table = table;
      for (BlockId b : table) ++holders[b];
    }
    for (BlockId b = 0; b < kBlocks; ++b) {
      if (holders[b] >= 2) {
        ASSERT_TRUE(m_.pool().hash(b).has_value()) << "shared block not in the cache";
      }
      if (m_.pool().hash(b)) {
        ASSERT_TRUE(shadow_[b].valid) << "cached block was never fully computed";
      }
    }
  }

  Rng rng_;
  KvCacheManager m_;
  std::vector<Content> shadow_;
  std::vector<Tokens> bases_;
  std::map<SeqId, Live> live_;
  SeqId next_id_ = 0;
};

TEST(KvCacheManagerFuzz, RandomOperationsKeepInvariantsAndReuseOnlyMatchingKv) {
  Fuzzer f;
  for (int i = 0; i < 20000; ++i) {
    f.step();
    if (::testing::Test::HasFatalFailure() || ::testing::Test::HasNonfatalFailure()) FAIL() << "at op " << i;
  }
  // The run must have exercised sharing, reuse from the free list, eviction and full pools.
  EXPECT_GT(f.shared_hits, 100);
  EXPECT_GT(f.free_list_hits, 100);
  EXPECT_GT(f.failed_allocs, 100);
  EXPECT_GT(f.manager().prefix_hits(), 1000);
  std::printf("fuzz: %lld shared hits, %lld free-list hits, %lld failed allocations, %lld/%lld tokens hit\n",
              static_cast<long long>(f.shared_hits), static_cast<long long>(f.free_list_hits),
              static_cast<long long>(f.failed_allocs), static_cast<long long>(f.manager().prefix_hits()),
              static_cast<long long>(f.manager().prefix_queries()));
}

}  // namespace
}  // namespace frugal
