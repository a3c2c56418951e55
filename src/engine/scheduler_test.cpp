// Scheduler unit tests in the vLLM style: scripted scenarios with exact plans, block ids and free-list
// order, then a seeded random loop that checks every invariant after every operation.
#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace frugal {
namespace {

std::vector<std::tuple<SeqId, int64_t, int64_t, bool>> flat(const SchedulePlan& p) {
  std::vector<std::tuple<SeqId, int64_t, int64_t, bool>> r;
  for (const ScheduledSeq& s : p.seqs) r.emplace_back(s.id, s.first_pos, s.n_tokens, s.sample);
  return r;
}
using Row = std::tuple<SeqId, int64_t, int64_t, bool>;

TEST(Scheduler, TokenBudgetChunksPromptsAndCapsSequences) {
  KvCacheManager kv(8, 4, true);
  Scheduler s({/*max_seqs=*/2, /*max_batched_tokens=*/8, /*max_prefill_chunk=*/8}, &kv);
  s.add(1, {1, 2, 3, 4, 5, 6}, 0);
  s.add(2, {7, 8, 9, 10, 11}, 0);
  s.add(3, {12, 13, 14}, 0);
  SchedulePlan p = s.schedule();
  // A takes its whole prompt, B the 2 tokens left of the budget, C waits (max_seqs 2).
  EXPECT_EQ(flat(p), (std::vector<Row>{{1, 0, 6, true}, {2, 0, 2, false}}));
  EXPECT_EQ(kv.block_table(1), (std::vector<BlockId>{0, 1}));
  EXPECT_EQ(kv.block_table(2), (std::vector<BlockId>{2}));
  EXPECT_EQ(s.n_waiting(), 1);
  s.update(p);
  s.append_token(1, 100);
  s.check_invariants();
  p = s.schedule();
  // Decode first (1 token), then B's remaining 3 prompt tokens; B grows into block 3.
  EXPECT_EQ(flat(p), (std::vector<Row>{{1, 6, 1, true}, {2, 2, 3, true}}));
  EXPECT_EQ(kv.block_table(2), (std::vector<BlockId>{2, 3}));
  s.update(p);
  s.append_token(1, 101);
  s.append_token(2, 102);
  s.finish(1);  // A done: its blocks go to the tail last block first
  EXPECT_EQ(kv.pool().free_list(), (std::vector<BlockId>{4, 5, 6, 7, 1, 0}));
  p = s.schedule();
  EXPECT_EQ(flat(p), (std::vector<Row>{{2, 5, 1, true}, {3, 0, 3, true}}));
  EXPECT_EQ(kv.block_table(3), (std::vector<BlockId>{4}));
  s.check_invariants();
}

TEST(Scheduler, PreemptsTheNewestAndResumesFromThePrefixCache) {
  KvCacheManager kv(4, 2, true);
  Scheduler s({4, 16, 16}, &kv);
  s.add(1, {1, 2, 3}, 0);  // A
  s.add(2, {4, 5, 6}, 0);  // B
  SchedulePlan p = s.schedule();
  EXPECT_EQ(flat(p), (std::vector<Row>{{1, 0, 3, true}, {2, 0, 3, true}}));
  EXPECT_EQ(kv.block_table(1), (std::vector<BlockId>{0, 1}));
  EXPECT_EQ(kv.block_table(2), (std::vector<BlockId>{2, 3}));
  s.update(p);
  s.append_token(1, 7);
  s.append_token(2, 8);
  p = s.schedule();
  EXPECT_EQ(flat(p), (std::vector<Row>{{1, 3, 1, true}, {2, 3, 1, true}}));
  s.update(p);  // both now hold 4 computed tokens: blocks 0..3 full and cached
  s.append_token(1, 9);
  s.append_token(2, 10);
  EXPECT_EQ(kv.pool().n_cached(), 4);
  // A needs a third block; the pool is empty, so B (newest) is preempted: its blocks are released last
  // first (3, then 2) and A takes the head of the free list.
  p = s.schedule();
  EXPECT_EQ(flat(p), (std::vector<Row>{{1, 4, 1, true}}));
  EXPECT_EQ(p.preempted, (std::vector<SeqId>{2}));
  EXPECT_EQ(kv.block_table(1), (std::vector<BlockId>{0, 1, 3}));
  EXPECT_EQ(kv.pool().free_list(), (std::vector<BlockId>{2}));
  EXPECT_FALSE(s.running(2));
  EXPECT_EQ(s.n_computed(2), 0);
  EXPECT_EQ(s.tokens(2), (std::vector<int32_t>{4, 5, 6, 8, 10}));
  EXPECT_EQ(s.n_preemptions(2), 1);
  s.check_invariants();
  s.update(p);
  s.append_token(1, 11);
  // B would hit its cached first block (2, on the free list) but needs 2 more: not enough, it waits.
  p = s.schedule();
  EXPECT_EQ(flat(p), (std::vector<Row>{{1, 5, 1, true}}));
  EXPECT_TRUE(p.preempted.empty());
  EXPECT_EQ(s.n_waiting(), 1);
  s.update(p);
  s.finish(1);
  EXPECT_EQ(kv.pool().free_list(), (std::vector<BlockId>{2, 3, 1, 0}));
  // B resumes: block 2 from the cache (tokens 4, 5), then recomputes 6, 8, 10 into fresh blocks 3, 1.
  p = s.schedule();
  EXPECT_EQ(flat(p), (std::vector<Row>{{2, 2, 3, true}}));
  EXPECT_EQ(kv.block_table(2), (std::vector<BlockId>{2, 3, 1}));
  EXPECT_EQ(s.n_cached(2), 0) << "cached tokens count the first admission only";
  s.check_invariants();
}

TEST(Scheduler, SelfPreemptionWhenAloneDoesNotLoop) {
  // A single sequence that cannot grow (pool exhausted by a waiting... here by itself) preempts itself.
  KvCacheManager kv(2, 2, false);
  Scheduler s({4, 16, 16}, &kv);
  s.add(1, {1, 2, 3, 4}, 0);
  SchedulePlan p = s.schedule();
  s.update(p);
  s.append_token(1, 5);  // 5 tokens need 3 blocks of 2: more than the pool
  p = s.schedule();
  EXPECT_TRUE(p.seqs.empty());
  EXPECT_EQ(p.preempted, (std::vector<SeqId>{1}));
  s.check_invariants();
}

TEST(Scheduler, CancelWhileWaitingOrRunningFreesEverything) {
  KvCacheManager kv(6, 4, true);
  Scheduler s({1, 64, 64}, &kv);
  s.add(1, {1, 2, 3, 4, 5}, 0);
  s.add(2, {6, 7}, 0);
  s.update(s.schedule());
  EXPECT_EQ(s.n_running(), 1);
  s.finish(2);  // waiting
  s.finish(1);  // running
  EXPECT_EQ(kv.n_free_blocks(), 6);
  EXPECT_EQ(s.n_running() + s.n_waiting(), 0);
  s.finish(99);  // unknown: no-op
  s.check_invariants();
}

TEST(Scheduler, RandomOperationsKeepEveryInvariant) {
  std::mt19937_64 rng(1234);
  KvCacheManager kv(24, 4, true);
  Scheduler s({5, 24, 10}, &kv);
  std::set<SeqId> live;
  SeqId next = 1;
  int64_t sampled = 0, preempted = 0;
  for (int it = 0; it < 5000; ++it) {
    const int op = (int)(rng() % 10);
    if (op < 2 && live.size() < 12) {
      std::vector<int32_t> prompt;
      const int n = 1 + (int)(rng() % 30);
      const int32_t shared = (int32_t)(rng() % 3);  // shared prefixes exercise the cache
      for (int i = 0; i < n; ++i) prompt.push_back(i < 8 ? shared * 10 + i : (int32_t)(rng() % 50));
      s.add(next, prompt, 0);
      live.insert(next++);
    } else if (op < 3 && !live.empty()) {
      auto pick = live.begin();
      std::advance(pick, (long)(rng() % live.size()));
      s.finish(*pick);
      live.erase(pick);
    } else {
      const SchedulePlan p = s.schedule();
      preempted += (int64_t)p.preempted.size();
      int64_t total = 0;
      std::set<SeqId> in_plan;
      for (const ScheduledSeq& q : p.seqs) {
        ASSERT_TRUE(in_plan.insert(q.id).second);
        ASSERT_GT(q.n_tokens, 0);
        ASSERT_EQ(q.first_pos, s.n_computed(q.id));
        total += q.n_tokens;
      }
      ASSERT_LE(total, 24);
      s.update(p);
      for (const ScheduledSeq& q : p.seqs) {
        ASSERT_EQ(s.n_computed(q.id), q.first_pos + q.n_tokens);
        if (q.sample) {
          ASSERT_EQ(s.n_computed(q.id), (int64_t)s.tokens(q.id).size());
          if (s.tokens(q.id).size() >= 40 || rng() % 8 == 0) {
            s.finish(q.id);
            live.erase(q.id);
          } else {
            s.append_token(q.id, (int32_t)(rng() % 50));
            ++sampled;
          }
        }
      }
    }
    s.check_invariants();
  }
  EXPECT_GT(sampled, 500);
  EXPECT_GT(preempted, 0);
  EXPECT_GT(kv.prefix_hits(), 0);
}

}  // namespace
}  // namespace frugal
