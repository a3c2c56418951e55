// Engine::Impl: the engine thread's state (internal to src/engine; engine.cpp and engine_step.cpp).
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/engine.h"
#include "engine/request_state.h"
#include "engine/scheduler.h"
#include "kv/kv_cache_manager.h"
#include "model/kv_cache.h"

namespace frugal {

struct Engine::Impl {
  Impl(const ModelConfig& mc, const EngineConfig& c)
      : kv(mc, c.kv_tokens, c.kv_type),
        kvm((int32_t)(c.kv_tokens / c.block_size), c.block_size, c.prefix_caching),
        sched(SchedulerConfig{c.max_seqs, c.max_batched_tokens, c.max_batched_tokens}, &kvm) {}

  KvCache kv;
  KvCacheManager kvm;
  Scheduler sched;

  std::mutex inbox_mu;
  std::condition_variable inbox_cv;
  std::deque<std::unique_ptr<RequestState>> inbox;
  std::map<SeqId, std::unique_ptr<RequestState>> live;
  SeqId next_id = 1;

  // Step buffers (reused).
  std::vector<int32_t> tokens, pos, slots, logit_rows;
  std::vector<BatchSeq> bseqs;
  std::vector<float> logits;
  std::vector<RequestState*> sampling;  // sequences that sample this step, in logits-row order
  std::vector<int32_t> sampled;

  mutable std::mutex stats_mu;
  EngineStats stats;
  std::atomic<int64_t> sched_waiting{0};  // scheduler's waiting queue after the last step (admission control)
};

}  // namespace frugal
