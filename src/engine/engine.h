// Engine: continuous batching over one Model (DESIGN.md §1). One engine thread owns the model, the paged
// KV cache and the scheduler; any number of other threads submit requests and read their events.
//
//   HTTP thread                         engine thread (Engine::run_loop)
//   submit(req) -> RequestStream  -->   inbox -> scheduler.add
//   stream->next(&ev) <-- events  <--   step(): schedule -> one flattened forward -> sample -> stop rules
//   stream->cancel()              -->   cancel flag, seen at the next step: the sequence is freed at once
//
// Every step runs one batch mixing prompt chunks and decode tokens of many sequences; a sequence's tokens
// are identical whatever else is in the batch (batch invariance, tested).
//
// Thread-safety: submit(), stats(), drain(), config accessors are thread-safe. RequestStream is shared
// between the engine and one reader thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backend/backend.h"
#include "base/status.h"
#include "model/model.h"
#include "sample/sampler.h"
#include "tokenizer/tokenizer.h"

namespace frugal {

class ThreadPool;

struct EngineConfig {
  int64_t n_ctx = 0;                   // max tokens per sequence (prompt + output); 0 = model's n_ctx_train
  int64_t kv_tokens = 0;               // KV pool capacity in tokens (all sequences); 0 = from kv_bytes
  uint64_t kv_bytes = 0;               // KV pool capacity in bytes, used when kv_tokens == 0
  DType kv_type = DType::F16;          // F16 or F32
  int32_t block_size = 16;             // tokens per KV block
  int32_t max_seqs = 16;               // sequences running at once
  int64_t max_batched_tokens = 512;    // tokens per step (prompt chunks + decode tokens)
  int64_t max_waiting = 256;           // queued requests beyond this are refused (kUnavailable)
  bool prefix_caching = true;

  // Fills defaults against the model and checks the values; the message names the bad field.
  Status validate(const ModelConfig& model);
};

// One generation request, already tokenized (the server renders chat templates and tokenizes).
struct GenerateRequest {
  std::vector<int32_t> prompt;             // non-empty
  SamplingParams sampling;
  int64_t max_tokens = -1;                 // < 0: until end of generation or the context is full
  std::vector<std::string> stop;           // stop strings; matched across token boundaries, never emitted
  bool ignore_eos = false;                 // keep generating past end-of-generation tokens
  int32_t top_logprobs = -1;               // -1: no logprobs; 0..20: the sampled token's plus this many
  uint64_t cache_salt = 0;                 // separates prefix-cache entries (e.g. per adapter/tenant)
};

enum class FinishReason { kStop, kLength, kCancelled, kError };
// "stop" | "length" | "cancelled" | "error" (the OpenAI finish_reason spelling where one exists)
const char* finish_reason_name(FinishReason r);

struct TokenLogprob {
  int32_t id = 0;
  std::string text;     // the token's own bytes (may be part of a UTF-8 sequence)
  float logprob = 0;    // log-softmax of the raw logits (before penalties/temperature)
  std::vector<std::pair<int32_t, float>> top;  // top_logprobs alternatives (id, logprob), best first
};

struct RequestUsage {
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;      // prompt tokens served from the prefix cache
  int64_t completion_tokens = 0;  // sampled tokens, the end-of-generation token included
  int64_t preemptions = 0;
  double queue_s = 0;             // submit -> first scheduled
  double ttft_s = 0;              // submit -> first token sampled
  double e2e_s = 0;               // submit -> finished
  double engine_s = 0;            // this request's share of engine step time (by tokens in each step)
  std::vector<double> itl_s;      // inter-token latencies (one per token after the first)
};

// One event of a request's stream. Text events carry new text (never part of a stop string, never a
// partial UTF-8 sequence); the last event has done == true.
struct GenerationEvent {
  std::string text;
  std::vector<TokenLogprob> logprobs;  // tokens whose text is (at least partly) in this or earlier events
  bool done = false;
  FinishReason finish = FinishReason::kStop;
  Status error;                        // set when finish == kError
  RequestUsage usage;                  // filled on the last event
};

class RequestStream {
 public:
  // Waits up to timeout_ms for the next event. Returns false on timeout. After the done event, returns
  // false forever.
  bool next(GenerationEvent* ev, int64_t timeout_ms);
  // Asks the engine to stop this request; it frees the sequence's KV blocks at its next step and sends a
  // done event with FinishReason::kCancelled. Safe to call from any thread, any number of times.
  void cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

  // Engine side.
  void push(GenerationEvent ev);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<GenerationEvent> events_;
  bool finished_ = false;
  std::atomic<bool> cancelled_{false};
};

// A consistent snapshot for metrics and /ready (counters are totals since start).
struct EngineStats {
  int64_t running = 0, waiting = 0;
  int64_t kv_blocks_total = 0, kv_blocks_free = 0;  // free includes cached-but-unreferenced blocks
  int64_t kv_tokens_capacity = 0;
  double kv_usage = 0;                              // 1 - free/total
  int64_t prefix_cache_queries = 0, prefix_cache_hits = 0;  // in tokens, like vLLM
  int64_t preemptions = 0;
  int64_t prompt_tokens = 0, generation_tokens = 0;
  int64_t steps = 0;
  double busy_s = 0;                                // time spent in steps
  int64_t requests_finished[4] = {0, 0, 0, 0};      // by FinishReason
};

class Engine {
 public:
  // Borrows model, tokenizer and backend (they must outlive the Engine). Allocates the KV pool. `pool`
  // (optional, borrowed; normally the backend's) samples the sequences of a step in parallel.
  static StatusOr<std::unique_ptr<Engine>> create(Model& model, const Tokenizer& tokenizer, Backend& backend,
                                                  EngineConfig config, ThreadPool* pool = nullptr);
  ~Engine();  // stops the engine thread; unfinished requests get a kCancelled done event

  // Starts the engine thread.
  void start();
  // Stops admitting (submit returns kUnavailable), lets running and waiting requests finish.
  void drain();
  bool draining() const { return draining_.load(); }
  // Stops the thread after the current step; unfinished requests are cancelled.
  void stop();

  // Queues a request. Errors (nothing queued): kInvalidArgument for an empty prompt, a token id outside
  // the vocabulary, or bad sampling values; kOutOfRange when the prompt leaves no room to generate in the
  // context (the message says both numbers); kUnavailable when draining or max_waiting requests wait.
  // max_tokens is clamped to the room left in the context.
  StatusOr<std::shared_ptr<RequestStream>> submit(GenerateRequest request);

  EngineStats stats() const;
  const EngineConfig& config() const { return config_; }
  const Model& model() const { return model_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }
  size_t kv_bytes_per_token() const;

  // Runs one step on the calling thread (tests drive the engine without its thread). Returns false when
  // there was nothing to do.
  bool step_for_test();

  struct Impl;  // engine-thread state (engine_impl.h), internal to src/engine

 private:
  Engine(Model& model, const Tokenizer& tokenizer, Backend& backend, EngineConfig config, ThreadPool* pool);
  void run_loop();

  Model& model_;
  const Tokenizer& tokenizer_;
  Backend& backend_;
  EngineConfig config_;
  ThreadPool* pool_;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  std::atomic<bool> draining_{false};
  std::atomic<bool> stopping_{false};
};

}  // namespace frugal
