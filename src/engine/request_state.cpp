#include "engine/request_state.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/timer.h"

namespace frugal {

RequestState::RequestState(GenerateRequest request, const Tokenizer& tokenizer, int64_t n_vocab)
    : req(std::move(request)),
      stream(std::make_shared<RequestStream>()),
      sampler(req.sampling, n_vocab),
      detok(tokenizer, /*render_special=*/false, /*continuation=*/true),
      stop(req.stop),
      t_submit(now_seconds()) {
  for (int32_t id : req.prompt) sampler.accept(id);  // the penalty window spans the prompt tail
  usage.prompt_tokens = (int64_t)req.prompt.size();
}

void RequestState::emit(std::string text) {
  if (text.empty() && pending_logprobs.empty()) return;
  GenerationEvent ev;
  ev.text = std::move(text);
  ev.logprobs = std::move(pending_logprobs);
  pending_logprobs.clear();
  stream->push(std::move(ev));
}

void RequestState::finish_event(FinishReason reason, std::string text, Status error) {
  GenerationEvent ev;
  ev.text = std::move(text);
  ev.logprobs = std::move(pending_logprobs);
  pending_logprobs.clear();
  ev.done = true;
  ev.finish = reason;
  ev.error = std::move(error);
  usage.completion_tokens = n_generated;
  usage.e2e_s = now_seconds() - t_submit;
  ev.usage = usage;
  stream->push(std::move(ev));
}

TokenLogprob token_logprobs(const float* logits, int64_t n_vocab, int32_t id, int32_t n_top, const Tokenizer& tok) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n_vocab; ++i) mx = std::max(mx, logits[i]);
  double sum = 0;
  for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp((double)logits[i] - mx);
  const double log_z = mx + std::log(sum);
  TokenLogprob r;
  r.id = id;
  r.text = tok.token_to_piece(id);
  r.logprob = (float)(logits[id] - log_z);
  if (n_top > 0) {
    std::vector<int32_t> idx((size_t)n_vocab);
    std::iota(idx.begin(), idx.end(), 0);
    const size_t k = std::min<size_t>((size_t)n_top, idx.size());
    std::partial_sort(idx.begin(), idx.begin() + (ptrdiff_t)k, idx.end(), [&](int32_t a, int32_t b) {
      return logits[a] != logits[b] ? logits[a] > logits[b] : a < b;
    });
    for (size_t i = 0; i < k; ++i) r.top.emplace_back(idx[i], (float)(logits[idx[i]] - log_z));
  }
  return r;
}

}  // namespace frugal
