#include "kv/block_pool.h"

#include <gtest/gtest.h>

#include <unordered_set>
#include <vector>

namespace frugal {
namespace {

using Ids = std::vector<BlockId>;

TEST(HashBlock, DeterministicAndSensitiveToEveryInput) {
  const std::vector<int32_t> t = {1, 2, 3, 4};
  const BlockHash h = hash_block(0, t.data(), 4, 0);
  EXPECT_EQ(h, hash_block(0, t.data(), 4, 0));
  // Pinned value: the hash must not change silently (it names cached blocks; docs describe it).
  EXPECT_EQ(h, 0xB1D8EB0BEDF7BC0Eull);
  EXPECT_NE(h, hash_block(1, t.data(), 4, 0));   // parent
  EXPECT_NE(h, hash_block(0, t.data(), 4, 1));   // salt
  EXPECT_NE(h, hash_block(0, t.data(), 3, 0));   // n_tokens
  const std::vector<int32_t> u = {1, 2, 4, 3};
  EXPECT_NE(h, hash_block(0, u.data(), 4, 0));   // token order
  const std::vector<int32_t> neg = {1, 2, 3, -4};
  EXPECT_NE(h, hash_block(0, neg.data(), 4, 0));
}

TEST(HashBlock, NoCollisionsOverSmallBlocksAndChains) {
  std::unordered_set<BlockHash> seen;
  for (int32_t a = 0; a < 300; ++a) {
    for (int32_t b = 0; b < 300; ++b) {
      const int32_t t[2] = {a, b};
      EXPECT_TRUE(seen.insert(hash_block(0, t, 2, 0)).second) << a << " " << b;
    }
  }
  // Chains over a one-token alphabet of length 1..2000 stay distinct.
  BlockHash h = 0;
  const int32_t zero = 0;
  for (int i = 0; i < 2000; ++i) {
    h = hash_block(h, &zero, 1, 7);
    EXPECT_TRUE(seen.insert(h).second) << i;
  }
}

TEST(BlockPool, StartsWithAllBlocksFreeInIdOrder) {
  BlockPool pool(5, 16);
  pool.check_invariants();
  EXPECT_EQ(pool.n_blocks(), 5);
  EXPECT_EQ(pool.block_size(), 16);
  EXPECT_EQ(pool.n_free(), 5);
  EXPECT_EQ(pool.n_cached(), 0);
  EXPECT_EQ(pool.free_list(), (Ids{0, 1, 2, 3, 4}));
  for (BlockId b = 0; b < 5; ++b) {
    EXPECT_EQ(pool.ref_count(b), 0);
    EXPECT_FALSE(pool.hash(b).has_value());
    EXPECT_EQ(pool.cache_id(b), 0u);
  }
}

TEST(BlockPool, AllocatePopsHeadReleasePushesTail) {
  BlockPool pool(5, 4);
  EXPECT_EQ(pool.allocate(2), (Ids{0, 1}));
  EXPECT_EQ(pool.ref_count(0), 1);
  EXPECT_EQ(pool.ref_count(1), 1);
  EXPECT_EQ(pool.n_free(), 3);
  EXPECT_EQ(pool.free_list(), (Ids{2, 3, 4}));
  pool.release(1);
  pool.release(0);
  pool.check_invariants();
  EXPECT_EQ(pool.free_list(), (Ids{2, 3, 4, 1, 0}));
  EXPECT_EQ(pool.allocate(3), (Ids{2, 3, 4}));
  EXPECT_EQ(pool.allocate(0), Ids{});
  EXPECT_EQ(pool.free_list(), (Ids{1, 0}));
  EXPECT_EQ(pool.allocate(2), (Ids{1, 0}));
  EXPECT_EQ(pool.n_free(), 0);
  EXPECT_EQ(pool.free_list(), Ids{});
  pool.check_invariants();
}

TEST(BlockPool, TouchUnlinksFreeBlockFromAnywhereAndCountsRefs) {
  BlockPool pool(5, 4);
  pool.touch(2);  // middle
  EXPECT_EQ(pool.free_list(), (Ids{0, 1, 3, 4}));
  pool.touch(0);  // head
  pool.touch(4);  // tail
  EXPECT_EQ(pool.free_list(), (Ids{1, 3}));
  pool.check_invariants();
  pool.touch(2);
  EXPECT_EQ(pool.ref_count(2), 2);
  EXPECT_EQ(pool.n_free(), 2);
  pool.release(2);
  EXPECT_EQ(pool.ref_count(2), 1);
  EXPECT_EQ(pool.free_list(), (Ids{1, 3}));  // still referenced: not on the list
  pool.release(2);
  EXPECT_EQ(pool.free_list(), (Ids{1, 3, 2}));
  pool.touch(1);
  pool.touch(3);
  pool.touch(2);
  EXPECT_EQ(pool.free_list(), Ids{});
  pool.release(4);
  EXPECT_EQ(pool.free_list(), (Ids{4}));
  pool.check_invariants();
}

TEST(BlockPool, CachedBlockSurvivesReleaseUntilAllocateEvictsIt) {
  BlockPool pool(3, 2);
  const int32_t t[2] = {5, 6};
  const Ids a = pool.allocate(1);
  ASSERT_EQ(a, Ids{0});
  pool.cache(0, 42, t);
  EXPECT_EQ(pool.hash(0), std::optional<BlockHash>(42));
  EXPECT_NE(pool.cache_id(0), 0u);
  EXPECT_EQ(pool.n_cached(), 1);
  EXPECT_EQ(pool.lookup(42, t), 0);
  pool.release(0);
  EXPECT_EQ(pool.free_list(), (Ids{1, 2, 0}));
  EXPECT_EQ(pool.lookup(42, t), 0);  // kept while free
  pool.check_invariants();
  EXPECT_EQ(pool.allocate(2), (Ids{1, 2}));
  EXPECT_EQ(pool.lookup(42, t), 0);
  EXPECT_EQ(pool.allocate(1), Ids{0});  // evicted now
  EXPECT_EQ(pool.lookup(42, t), kNoBlock);
  EXPECT_FALSE(pool.hash(0).has_value());
  EXPECT_EQ(pool.cache_id(0), 0u);
  EXPECT_EQ(pool.n_cached(), 0);
  pool.check_invariants();
}

TEST(BlockPool, CacheOfAlreadyCachedHashKeepsTheFirstBlock) {
  BlockPool pool(3, 2);
  const int32_t t[2] = {5, 6};
  pool.allocate(2);
  pool.cache(0, 42, t);
  const CacheId first = pool.cache_id(0);
  pool.cache(1, 42, t);
  EXPECT_FALSE(pool.hash(1).has_value());
  EXPECT_EQ(pool.cache_id(1), 0u);
  EXPECT_EQ(pool.cache_id(0), first);
  EXPECT_EQ(pool.lookup(42, t), 0);
  EXPECT_EQ(pool.n_cached(), 1);
  pool.check_invariants();
}

TEST(BlockPool, LookupComparesTokensOnHashCollision) {
  BlockPool pool(2, 3);
  const int32_t a[3] = {1, 2, 3};
  const int32_t b[3] = {1, 2, 4};
  pool.allocate(1);
  pool.cache(0, 7, a);  // forced hash: b would collide with a under 7
  EXPECT_EQ(pool.lookup(7, a), 0);
  EXPECT_EQ(pool.lookup(7, b), kNoBlock);
  EXPECT_EQ(pool.lookup(8, a), kNoBlock);
}

TEST(BlockPool, LookupChecksTheParentRegistration) {
  // Block 1 is cached as the child of registration p0 of block 0. After block 0 is evicted and its hash
  // is registered again (a colliding block with other tokens), the child must not match the new parent,
  // although its own hash and tokens do: its KV was computed after the old parent's tokens.
  BlockPool pool(4, 2);
  const int32_t p_tokens[2] = {1, 1};
  const int32_t q_tokens[2] = {9, 9};
  const int32_t c_tokens[2] = {2, 2};
  ASSERT_EQ(pool.allocate(2), (Ids{0, 1}));
  pool.cache(0, 100, p_tokens);
  const CacheId p0 = pool.cache_id(0);
  pool.cache(1, 200, c_tokens, p0);
  EXPECT_EQ(pool.lookup(200, c_tokens, p0), 1);
  EXPECT_EQ(pool.lookup(200, c_tokens, 0), kNoBlock);
  pool.release(0);  // parent freed first; child stays referenced
  ASSERT_EQ(pool.allocate(2), (Ids{2, 3}));
  ASSERT_EQ(pool.allocate(1), Ids{0});  // evicts the parent
  EXPECT_EQ(pool.lookup(100, p_tokens), kNoBlock);
  pool.cache(0, 100, q_tokens);  // the same hash, other contents
  const CacheId q0 = pool.cache_id(0);
  EXPECT_NE(q0, p0);
  EXPECT_EQ(pool.lookup(100, q_tokens), 0);
  EXPECT_EQ(pool.lookup(200, c_tokens, q0), kNoBlock);
  pool.check_invariants();
}

TEST(BlockPoolDeathTest, MisuseAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  BlockPool pool(2, 2);
  EXPECT_DEATH(pool.release(0), "release of a free block");
  EXPECT_DEATH(pool.allocate(3), "n <= n_free_");
  const int32_t t[2] = {1, 2};
  EXPECT_DEATH(pool.cache(0, 1, t), "only a referenced");
}

}  // namespace
}  // namespace frugal
