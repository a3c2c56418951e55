#include "engine/scheduler.h"

#include <algorithm>

#include "base/check.h"

namespace frugal {

Scheduler::Scheduler(SchedulerConfig config, KvCacheManager* kv) : config_(config), kv_(kv) {
  FRUGAL_CHECK(config_.max_seqs > 0 && config_.max_batched_tokens > 0 && config_.max_prefill_chunk > 0);
  FRUGAL_CHECK(kv_ != nullptr);
}

void Scheduler::add(SeqId id, std::vector<int32_t> tokens, uint64_t cache_salt) {
  FRUGAL_CHECK(!tokens.empty());
  FRUGAL_CHECK_MSG(!seqs_.count(id), "sequence id added twice");
  Seq& s = seqs_[id];
  s.tokens = std::move(tokens);
  s.salt = cache_salt;
  waiting_.push_back(id);
}

// Tokens sequence s may compute this step given the budget left.
static int64_t step_tokens(int64_t remaining, int64_t budget, int64_t max_chunk) {
  int64_t n = std::min(remaining, budget);
  if (remaining > 1) n = std::min(n, max_chunk);  // a prompt (or recompute) in chunks
  return n;
}

SchedulePlan Scheduler::schedule() {
  SchedulePlan plan;
  int64_t budget = config_.max_batched_tokens;
  const bool preempted = schedule_running(plan, budget);
  if (!preempted) schedule_waiting(plan, budget);
  for (const ScheduledSeq& s : plan.seqs) plan.n_tokens += s.n_tokens;
  return plan;
}

bool Scheduler::schedule_running(SchedulePlan& plan, int64_t& budget) {
  bool preempted_any = false;
  size_t i = 0;
  while (i < running_.size() && budget > 0) {
    const SeqId id = running_[i];
    Seq& s = seqs_.at(id);
    const int64_t remaining = (int64_t)s.tokens.size() - s.n_computed;
    FRUGAL_CHECK_MSG(remaining > 0, "a running sequence has nothing to compute (missing append_token?)");
    const int64_t n = step_tokens(remaining, budget, config_.max_prefill_chunk);
    bool self_preempted = false;
    while (!kv_->allocate(id, s.n_computed + n, nullptr)) {
      // The newest running sequence makes room; it has not been scheduled yet (we go oldest first).
      const SeqId victim = running_.back();
      preempt(victim);
      plan.preempted.push_back(victim);
      preempted_any = true;
      if (victim == id) {
        self_preempted = true;
        break;
      }
    }
    if (self_preempted) break;  // it was the last running sequence
    plan.seqs.push_back({id, s.n_computed, n, s.n_computed + n == (int64_t)s.tokens.size()});
    budget -= n;
    ++i;
  }
  return preempted_any;
}

void Scheduler::schedule_waiting(SchedulePlan& plan, int64_t& budget) {
  while (!waiting_.empty() && (int64_t)running_.size() < config_.max_seqs && budget > 0) {
    const SeqId id = waiting_.front();
    Seq& s = seqs_.at(id);
    FRUGAL_CHECK(s.n_computed == 0 && !kv_->has(id));
    const PrefixHit hit = kv_->find_prefix(s.tokens, s.salt);
    const int64_t start = hit.n_tokens;
    const int64_t n = step_tokens((int64_t)s.tokens.size() - start, budget, config_.max_prefill_chunk);
    if (!kv_->allocate(id, start + n, &hit)) break;  // first come, first served: nobody overtakes
    s.n_computed = start;
    if (!s.admitted_once) {
      s.n_cached = start;
      s.admitted_once = true;
    }
    s.running = true;
    waiting_.pop_front();
    running_.push_back(id);
    plan.seqs.push_back({id, start, n, start + n == (int64_t)s.tokens.size()});
    budget -= n;
  }
}

void Scheduler::preempt(SeqId id) {
  Seq& s = seqs_.at(id);
  FRUGAL_CHECK(s.running);
  kv_->free(id);
  s.n_computed = 0;
  s.running = false;
  ++s.n_preemptions;
  ++total_preemptions_;
  running_.erase(std::find(running_.begin(), running_.end(), id));
  waiting_.push_front(id);
}

void Scheduler::update(const SchedulePlan& plan) {
  for (const ScheduledSeq& p : plan.seqs) {
    auto it = seqs_.find(p.id);
    if (it == seqs_.end()) continue;  // finished meanwhile
    Seq& s = it->second;
    FRUGAL_CHECK(s.running && s.n_computed == p.first_pos);
    s.n_computed += p.n_tokens;
    kv_->cache_computed(p.id, s.tokens, s.n_computed, s.salt);
  }
}

void Scheduler::append_token(SeqId id, int32_t token) {
  Seq& s = seqs_.at(id);
  FRUGAL_CHECK(s.running && s.n_computed == (int64_t)s.tokens.size());
  s.tokens.push_back(token);
}

void Scheduler::finish(SeqId id) {
  auto it = seqs_.find(id);
  if (it == seqs_.end()) return;
  if (it->second.running) {
    running_.erase(std::find(running_.begin(), running_.end(), id));
  } else {
    waiting_.erase(std::find(waiting_.begin(), waiting_.end(), id));
  }
  kv_->free(id);
  seqs_.erase(it);
}

const std::vector<int32_t>& Scheduler::tokens(SeqId id) const { return seqs_.at(id).tokens; }
int64_t Scheduler::n_computed(SeqId id) const { return seqs_.at(id).n_computed; }
int64_t Scheduler::n_cached(SeqId id) const { return seqs_.at(id).n_cached; }
int64_t Scheduler::n_preemptions(SeqId id) const { return seqs_.at(id).n_preemptions; }
bool Scheduler::running(SeqId id) const { return seqs_.at(id).running; }

void Scheduler::check_invariants() const {
  FRUGAL_CHECK(running_.size() + waiting_.size() == seqs_.size());
  FRUGAL_CHECK((int64_t)running_.size() <= config_.max_seqs);
  for (SeqId id : running_) {
    const Seq& s = seqs_.at(id);
    FRUGAL_CHECK(s.running);
    const int64_t bs = kv_->block_size();
    FRUGAL_CHECK((int64_t)kv_->block_table(id).size() * bs >= s.n_computed);
  }
  for (SeqId id : waiting_) {
    const Seq& s = seqs_.at(id);
    FRUGAL_CHECK(!s.running && s.n_computed == 0 && !kv_->has(id));
  }
  kv_->check_invariants();
}

}  // namespace frugal
