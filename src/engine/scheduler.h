// Scheduler: which tokens of which sequences run in the next step (vLLM v1's scheduler, simplified).
//
// Each sequence has tokens (prompt + output so far) and n_computed (tokens whose K/V are in the cache).
// There are no prefill and decode phases: every step hands out a token budget until sequences catch up.
//
//   schedule():
//     1. running sequences, oldest first: each gets min(tokens - n_computed, budget, max_prefill_chunk)
//        tokens (1 for a decoding sequence). When the KV pool cannot grow a sequence, the newest running
//        sequence is preempted (its blocks freed, n_computed = 0, back to the front of the waiting queue;
//        recomputed later, usually from the prefix cache) until it fits or the sequence preempted itself.
//     2. when nothing was preempted: waiting sequences, first come first served, while fewer than max_seqs
//        run and budget is left. A new sequence first takes its cached prefix. Admission stops at the
//        first sequence that does not fit (no overtaking).
//   update(plan): n_computed += scheduled tokens; newly full blocks enter the prefix cache.
//   A planned sequence "samples" when its scheduled tokens reach the end of its tokens.
//
// Thread-safety: none; owned by the engine thread.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <vector>

#include "kv/kv_cache_manager.h"

namespace frugal {

struct SchedulerConfig {
  int32_t max_seqs = 16;
  int64_t max_batched_tokens = 512;
  int64_t max_prefill_chunk = 512;  // cap on one sequence's prompt tokens per step
};

struct ScheduledSeq {
  SeqId id = 0;
  int64_t first_pos = 0;  // == n_computed before the step
  int64_t n_tokens = 0;
  bool sample = false;    // the step computes the sequence's last token: sample the next one
};

struct SchedulePlan {
  std::vector<ScheduledSeq> seqs;  // running order
  std::vector<SeqId> preempted;    // preempted during this schedule() (not in seqs)
  int64_t n_tokens = 0;
  bool empty() const { return seqs.empty(); }
};

class Scheduler {
 public:
  Scheduler(SchedulerConfig config, KvCacheManager* kv);

  // Queues a new sequence (tokens non-empty; the caller checked it fits the pool).
  void add(SeqId id, std::vector<int32_t> tokens, uint64_t cache_salt);
  SchedulePlan schedule();
  void update(const SchedulePlan& plan);
  // Appends a sampled token to a running sequence.
  void append_token(SeqId id, int32_t token);
  // Removes a sequence (finished, cancelled) wherever it is and frees its blocks. No-op if unknown.
  void finish(SeqId id);

  bool has(SeqId id) const { return seqs_.count(id) != 0; }
  const std::vector<int32_t>& tokens(SeqId id) const;
  int64_t n_computed(SeqId id) const;
  int64_t n_cached(SeqId id) const;  // prompt tokens taken from the prefix cache at first admission
  int64_t n_preemptions(SeqId id) const;
  bool running(SeqId id) const;

  int64_t n_running() const { return (int64_t)running_.size(); }
  int64_t n_waiting() const { return (int64_t)waiting_.size(); }
  int64_t total_preemptions() const { return total_preemptions_; }
  const KvCacheManager& kv() const { return *kv_; }

  // Aborts unless: running/waiting partition the sequences, running ones own blocks for their computed
  // tokens, waiting ones own none, and the KV manager's invariants hold.
  void check_invariants() const;

 private:
  struct Seq {
    std::vector<int32_t> tokens;
    uint64_t salt = 0;
    int64_t n_computed = 0;
    int64_t n_cached = 0;
    int64_t n_preemptions = 0;
    bool admitted_once = false;
    bool running = false;
  };
  bool schedule_running(SchedulePlan& plan, int64_t& budget);
  void schedule_waiting(SchedulePlan& plan, int64_t& budget);
  void preempt(SeqId id);

  SchedulerConfig config_;
  KvCacheManager* kv_;
  std::map<SeqId, Seq> seqs_;
  std::vector<SeqId> running_;  // admission order (oldest first)
  std::deque<SeqId> waiting_;
  int64_t total_preemptions_ = 0;
};

}  // namespace frugal
