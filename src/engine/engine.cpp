#include "engine/engine.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "base/check.h"
#include "base/timer.h"
#include "engine/engine_impl.h"

namespace frugal {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kError: return "error";
  }
  return "?";
}

// ---- RequestStream ----

bool RequestStream::next(GenerationEvent* ev, int64_t timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return !events_.empty(); })) return false;
  *ev = std::move(events_.front());
  events_.pop_front();
  return true;
}

void RequestStream::push(GenerationEvent ev) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    finished_ = ev.done;
    events_.push_back(std::move(ev));
  }
  cv_.notify_all();
}

// ---- EngineConfig ----

Status EngineConfig::validate(const ModelConfig& model) {
  if (n_ctx < 0) return invalid_argument("context size must be >= 0 (0 = the model's), got " + std::to_string(n_ctx));
  if (n_ctx == 0) n_ctx = model.n_ctx_train > 0 ? model.n_ctx_train : 4096;
  FRUGAL_RETURN_IF_ERROR(KvCache::supports(model, kv_type));
  if (block_size < 1 || block_size > 1024 || (block_size & (block_size - 1)) != 0)
    return invalid_argument("KV block size must be a power of two in [1, 1024], got " + std::to_string(block_size));
  if (max_seqs < 1) return invalid_argument("max sequences must be >= 1, got " + std::to_string(max_seqs));
  if (max_batched_tokens < 1)
    return invalid_argument("max batched tokens must be >= 1, got " + std::to_string(max_batched_tokens));
  if (max_waiting < 0) return invalid_argument("max waiting requests must be >= 0, got " + std::to_string(max_waiting));
  if (kv_tokens < 0) return invalid_argument("KV cache tokens must be >= 0, got " + std::to_string(kv_tokens));
  const uint64_t per_token = KvCache::bytes_per_token(model, kv_type);
  if (kv_tokens == 0) {
    // Default: every sequence can hold a full context, within 2 GiB.
    const uint64_t want = std::min<uint64_t>((uint64_t)max_seqs * (uint64_t)n_ctx * per_token, uint64_t{2} << 30);
    const uint64_t bytes = kv_bytes > 0 ? kv_bytes : want;
    kv_tokens = (int64_t)(bytes / per_token);
  }
  kv_tokens = kv_tokens / block_size * block_size;
  if (kv_tokens < block_size)
    return out_of_range("the KV cache holds no block of " + std::to_string(block_size) + " tokens (" +
                        std::to_string(per_token) + " bytes per token); give it more memory");
  n_ctx = std::min(n_ctx, kv_tokens);  // one sequence must always fit the pool alone
  return Status::Ok();
}

// ---- Engine ----

Engine::Engine(Model& model, const Tokenizer& tokenizer, Backend& backend, EngineConfig config, ThreadPool* pool)
    : model_(model), tokenizer_(tokenizer), backend_(backend), config_(config), pool_(pool) {
  impl_ = std::make_unique<Impl>(model.config(), config_);
  EngineStats& s = impl_->stats;
  s.kv_blocks_total = impl_->kvm.n_blocks();
  s.kv_blocks_free = impl_->kvm.n_free_blocks();
  s.kv_tokens_capacity = config_.kv_tokens;
}

StatusOr<std::unique_ptr<Engine>> Engine::create(Model& model, const Tokenizer& tokenizer, Backend& backend,
                                                 EngineConfig config, ThreadPool* pool) {
  FRUGAL_RETURN_IF_ERROR(config.validate(model.config()));
  return std::unique_ptr<Engine>(new Engine(model, tokenizer, backend, config, pool));
}

Engine::~Engine() { stop(); }

size_t Engine::kv_bytes_per_token() const { return impl_->kv.bytes_per_token(); }

void Engine::start() {
  FRUGAL_CHECK(!thread_.joinable());
  thread_ = std::thread([this] { run_loop(); });
}

void Engine::drain() { draining_.store(true); }

void Engine::stop() {
  stopping_.store(true);
  impl_->inbox_cv.notify_all();
  if (thread_.joinable()) thread_.join();
  // Nothing runs any more: tell every unfinished request.
  std::deque<std::unique_ptr<RequestState>> inbox;
  {
    std::lock_guard<std::mutex> lock(impl_->inbox_mu);
    inbox.swap(impl_->inbox);
  }
  for (auto& r : inbox) r->finish_event(FinishReason::kCancelled, "", Status::Ok());
  for (auto& [id, r] : impl_->live) {
    r->finish_event(FinishReason::kCancelled, "", Status::Ok());
    impl_->sched.finish(id);
  }
  impl_->live.clear();
}

StatusOr<std::shared_ptr<RequestStream>> Engine::submit(GenerateRequest request) {
  const int64_t n_prompt = (int64_t)request.prompt.size();
  if (n_prompt == 0) return invalid_argument("the prompt is empty (no tokens to start from)");
  const int64_t n_vocab = model_.config().n_vocab;
  for (size_t i = 0; i < request.prompt.size(); ++i) {
    if (request.prompt[i] < 0 || request.prompt[i] >= n_vocab)
      return invalid_argument("prompt token " + std::to_string(request.prompt[i]) + " at index " + std::to_string(i) +
                              " is outside the vocabulary (0.." + std::to_string(n_vocab - 1) + ")");
  }
  FRUGAL_RETURN_IF_ERROR(request.sampling.validate());
  if (request.top_logprobs > 20) return invalid_argument("top_logprobs must be at most 20");
  if (n_prompt >= config_.n_ctx)
    return out_of_range("the prompt has " + std::to_string(n_prompt) + " tokens but the context holds " +
                        std::to_string(config_.n_ctx) + " (prompt plus at least one generated token)");
  const int64_t room = config_.n_ctx - n_prompt;
  if (request.max_tokens < 0 || request.max_tokens > room) request.max_tokens = room;
  if (request.max_tokens == 0) return invalid_argument("max_tokens must be at least 1");
  if (draining_.load()) return unavailable("the server is shutting down and accepts no new requests");

  auto state = std::make_unique<RequestState>(std::move(request), tokenizer_, model_.config().n_vocab);
  std::shared_ptr<RequestStream> stream = state->stream;
  {
    std::lock_guard<std::mutex> lock(impl_->inbox_mu);
    if ((int64_t)impl_->inbox.size() + impl_->sched_waiting.load() >= config_.max_waiting)
      return unavailable("too many requests are waiting (" + std::to_string(config_.max_waiting) +
                         "); retry later");
    state->id = impl_->next_id++;
    impl_->inbox.push_back(std::move(state));
  }
  impl_->inbox_cv.notify_one();
  return stream;
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lock(impl_->stats_mu);
  EngineStats s = impl_->stats;
  return s;
}

void Engine::run_loop() {
  while (!stopping_.load()) {
    if (step_for_test()) continue;
    std::unique_lock<std::mutex> lock(impl_->inbox_mu);
    impl_->inbox_cv.wait_for(lock, std::chrono::milliseconds(50),
                             [&] { return stopping_.load() || !impl_->inbox.empty(); });
  }
}

}  // namespace frugal
