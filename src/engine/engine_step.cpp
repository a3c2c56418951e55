// Engine::step: one iteration of the engine thread (DESIGN.md §1):
//   1. take new requests from the inbox; drop cancelled ones (their KV blocks are freed now)
//   2. plan = scheduler.schedule()
//   3. flatten the plan into one Batch (tokens, positions, KV slots, block tables, logit rows)
//   4. model.forward_batch
//   5. scheduler.update; sample each sequence that reached its last token; stop rules; events
//   6. stats
#include <algorithm>

#include "base/thread_pool.h"
#include "base/timer.h"
#include "engine/engine.h"
#include "engine/engine_impl.h"

namespace frugal {

namespace {

void finish(Engine::Impl& im, RequestState& r, FinishReason reason, std::string text, Status error = Status::Ok()) {
  r.usage.cached_tokens = im.sched.has(r.id) ? im.sched.n_cached(r.id) : r.usage.cached_tokens;
  im.sched.finish(r.id);
  r.finish_event(reason, std::move(text), std::move(error));
  std::lock_guard<std::mutex> lock(im.stats_mu);
  im.stats.requests_finished[(int)reason]++;
}

}  // namespace

// Flattens the plan into impl buffers; returns the batch.
static Batch build_batch(Engine::Impl& im, const SchedulePlan& plan) {
  const int32_t bs = im.kvm.block_size();
  int shift = 0;
  while ((1 << shift) < bs) ++shift;
  im.tokens.clear();
  im.pos.clear();
  im.slots.clear();
  im.logit_rows.clear();
  im.bseqs.clear();
  for (const ScheduledSeq& p : plan.seqs) {
    const std::vector<int32_t>& toks = im.sched.tokens(p.id);
    const std::vector<BlockId>& table = im.kvm.block_table(p.id);
    BatchSeq s;
    s.t0 = (int64_t)im.tokens.size();
    s.n = p.n_tokens;
    s.block_table = table.data();
    s.block_shift = shift;
    s.n_kv = p.first_pos + p.n_tokens;
    for (int64_t i = 0; i < p.n_tokens; ++i) {
      const int64_t q = p.first_pos + i;
      im.tokens.push_back(toks[(size_t)q]);
      im.pos.push_back((int32_t)q);
      im.slots.push_back((int32_t)(((int64_t)table[(size_t)(q >> shift)] << shift) | (q & (bs - 1))));
    }
    if (p.sample) im.logit_rows.push_back((int32_t)(s.t0 + s.n - 1));
    im.bseqs.push_back(s);
  }
  Batch b;
  b.tokens = im.tokens.data();
  b.pos = im.pos.data();
  b.slots = im.slots.data();
  b.T = (int64_t)im.tokens.size();
  b.seqs = im.bseqs.data();
  b.n_seqs = (int64_t)im.bseqs.size();
  b.logit_rows = im.logit_rows.data();
  b.n_logits = (int64_t)im.logit_rows.size();
  return b;
}

// Draws the next token of r from its logits row (and its logprobs when asked). Touches only r: the
// sequences of a step are sampled in parallel.
static int32_t sample_one(RequestState& r, const Tokenizer& tok, const float* row, int64_t n_vocab) {
  const int32_t id = r.sampler.sample(row);
  r.sampler.accept(id);
  if (r.req.top_logprobs >= 0) r.pending_logprobs.push_back(token_logprobs(row, n_vocab, id, r.req.top_logprobs, tok));
  return id;
}

// Appends the sampled token and applies the stop rules (engine thread, serial).
static void on_token(Engine::Impl& im, const Tokenizer& tok, int64_t n_ctx, RequestState& r, int32_t id, double now) {
  if (r.t_last_token < 0) {
    r.usage.ttft_s = now - r.t_submit;
  } else {
    r.usage.itl_s.push_back(now - r.t_last_token);
  }
  r.t_last_token = now;
  ++r.n_generated;
  {
    std::lock_guard<std::mutex> lock(im.stats_mu);
    im.stats.generation_tokens++;
  }
  im.sched.append_token(r.id, id);

  if (!r.req.ignore_eos && tok.is_eog(id)) {
    finish(im, r, FinishReason::kStop, r.stop.push(r.detok.flush()) + r.stop.flush());
    return;
  }
  std::string text = r.stop.push(r.detok.push(id));
  if (r.stop.stopped()) {
    finish(im, r, FinishReason::kStop, std::move(text));
    return;
  }
  const bool at_limit = r.n_generated >= r.req.max_tokens;
  const bool ctx_full = (int64_t)im.sched.tokens(r.id).size() >= n_ctx;
  if (at_limit || ctx_full) {
    text += r.stop.push(r.detok.flush());
    if (r.stop.stopped()) {
      finish(im, r, FinishReason::kStop, std::move(text));
    } else {
      finish(im, r, FinishReason::kLength, text + r.stop.flush());
    }
    return;
  }
  r.emit(std::move(text));
}

bool Engine::step_for_test() {
  Impl& im = *impl_;
  // 1. inbox and cancellations
  {
    std::deque<std::unique_ptr<RequestState>> fresh;
    {
      std::lock_guard<std::mutex> lock(im.inbox_mu);
      fresh.swap(im.inbox);
    }
    for (auto& r : fresh) {
      im.sched.add(r->id, r->req.prompt, r->req.cache_salt);
      const SeqId id = r->id;
      im.live.emplace(id, std::move(r));
    }
  }
  for (auto it = im.live.begin(); it != im.live.end();) {
    RequestState& r = *it->second;
    if (r.stream->cancelled()) {
      finish(im, r, FinishReason::kCancelled, "");
      it = im.live.erase(it);
    } else {
      ++it;
    }
  }

  // 2. plan
  const double t0 = now_seconds();
  const SchedulePlan plan = im.sched.schedule();
  for (SeqId id : plan.preempted) im.live.at(id)->usage.preemptions++;
  if (plan.empty()) {
    std::lock_guard<std::mutex> lock(im.stats_mu);
    im.stats.running = im.sched.n_running();
    im.stats.waiting = im.sched.n_waiting();
    im.stats.kv_blocks_free = im.kvm.n_free_blocks();
    im.stats.kv_usage = im.kvm.usage();
    im.sched_waiting.store(im.sched.n_waiting());
    return false;
  }
  int64_t new_prompt_tokens = 0;
  for (const ScheduledSeq& p : plan.seqs) {
    RequestState& r = *im.live.at(p.id);
    if (!r.scheduled_once) {
      r.scheduled_once = true;
      r.usage.queue_s = t0 - r.t_submit;
      new_prompt_tokens += r.usage.prompt_tokens;
    }
  }
  // 3-4. one forward for everything
  const Batch batch = build_batch(im, plan);
  const int64_t V = model_.config().n_vocab;
  im.logits.resize((size_t)(std::max<int64_t>(batch.n_logits, 1) * V));
  const Status st = model_.forward_batch(backend_, im.kv, batch, im.logits.data());
  if (!st.ok()) {
    for (const ScheduledSeq& p : plan.seqs) {
      auto it = im.live.find(p.id);
      finish(im, *it->second, FinishReason::kError, "", st);
      im.live.erase(it);
    }
    return true;
  }

  // 5. bookkeeping, sampling, stop rules
  im.sched.update(plan);
  im.sampling.clear();
  for (const ScheduledSeq& p : plan.seqs)
    if (p.sample) im.sampling.push_back(im.live.at(p.id).get());
  im.sampled.resize(im.sampling.size());
  const auto draw = [&](int64_t i, int) {
    im.sampled[(size_t)i] = sample_one(*im.sampling[(size_t)i], tokenizer_, im.logits.data() + i * V, V);
  };
  if (pool_ && im.sampling.size() > 1) {
    pool_->parallel_for((int64_t)im.sampling.size(), draw);
  } else {
    for (size_t i = 0; i < im.sampling.size(); ++i) draw((int64_t)i, 0);
  }
  // Engine time shares before the stop rules, so a request finishing in this step is billed for it.
  const double now = now_seconds();
  const double dt = now - t0;
  for (const ScheduledSeq& p : plan.seqs)
    im.live.at(p.id)->usage.engine_s += dt * (double)p.n_tokens / (double)plan.n_tokens;
  for (size_t i = 0; i < im.sampling.size(); ++i) on_token(im, tokenizer_, config_.n_ctx, *im.sampling[i], im.sampled[i], now);
  // 6. finished requests, stats
  for (auto it = im.live.begin(); it != im.live.end();) {
    if (!im.sched.has(it->first)) {
      it = im.live.erase(it);
    } else {
      ++it;
    }
  }
  std::lock_guard<std::mutex> lock(im.stats_mu);
  EngineStats& s = im.stats;
  s.running = im.sched.n_running();
  s.waiting = im.sched.n_waiting();
  s.kv_blocks_free = im.kvm.n_free_blocks();
  s.kv_usage = im.kvm.usage();
  s.prefix_cache_queries = im.kvm.prefix_queries();
  s.prefix_cache_hits = im.kvm.prefix_hits();
  s.preemptions = im.sched.total_preemptions();
  s.prompt_tokens += new_prompt_tokens;
  s.steps++;
  s.busy_s += dt;
  im.sched_waiting.store(im.sched.n_waiting());
  return true;
}

}  // namespace frugal
