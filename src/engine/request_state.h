// RequestState: the engine thread's record of one request (internal to src/engine): its sampler,
// detokenizer, stop matcher, timings and the stream its events go to.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/stop_matcher.h"
#include "kv/kv_cache_manager.h"

namespace frugal {

struct RequestState {
  RequestState(GenerateRequest request, const Tokenizer& tokenizer, int64_t n_vocab);

  SeqId id = 0;
  GenerateRequest req;
  std::shared_ptr<RequestStream> stream;
  Sampler sampler;
  StreamingDetokenizer detok;
  StopMatcher stop;
  int64_t n_generated = 0;
  bool scheduled_once = false;
  double t_submit = 0, t_last_token = -1;
  RequestUsage usage;
  std::vector<TokenLogprob> pending_logprobs;

  // Pushes a text event when there is text or logprobs to deliver.
  void emit(std::string text);
  // Pushes the final event (with usage; e2e time measured now).
  void finish_event(FinishReason reason, std::string text, Status error);
};

// Log-softmax of the raw logits for the sampled token and the n best alternatives (ties -> lower id).
TokenLogprob token_logprobs(const float* logits, int64_t n_vocab, int32_t id, int32_t n_top, const Tokenizer& tok);

}  // namespace frugal
