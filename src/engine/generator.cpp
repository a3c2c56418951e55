#include "engine/generator.h"

#include <algorithm>

#include "base/timer.h"

namespace frugal {

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::kEog: return "end of generation";
    case StopReason::kMaxTokens: return "token limit";
    case StopReason::kContextFull: return "context full";
    case StopReason::kCallback: return "stopped by caller";
  }
  return "?";
}

Generator::Generator(Model& model, const Tokenizer& tokenizer, Backend& backend, KvCache& kv,
                     GeneratorOptions options)
    : model_(model), tokenizer_(tokenizer), backend_(backend), kv_(kv), options_(options) {
  FRUGAL_CHECK(options_.n_batch > 0);
  logits_.resize((size_t)model_.config().n_vocab);
}

Status forward_chunked(Model& model, Backend& backend, KvCache& kv, const int32_t* tokens, int64_t T,
                       int64_t n_batch, float* logits_last) {
  FRUGAL_CHECK(n_batch > 0);
  if (kv.n_past() + T > kv.n_ctx()) {
    return out_of_range(std::to_string(T) + " tokens do not fit the context: " + std::to_string(kv.n_past()) +
                        " of " + std::to_string(kv.n_ctx()) + " positions already used; raise the context size");
  }
  std::vector<int32_t> pos;
  for (int64_t off = 0; off < T; off += n_batch) {
    const int64_t n = std::min(n_batch, T - off);
    pos.resize((size_t)n);
    for (int64_t i = 0; i < n; ++i) pos[(size_t)i] = (int32_t)(kv.n_past() + i);
    FRUGAL_RETURN_IF_ERROR(model.forward(backend, kv, tokens + off, pos.data(), n, logits_last, LogitsMode::kLast));
  }
  return Status::Ok();
}

StatusOr<GenerationResult> Generator::generate(const std::vector<int32_t>& prompt, int64_t n_predict,
                                               Sampler& sampler, const TextCallback& on_text) {
  if (prompt.empty()) return invalid_argument("the prompt is empty (no tokens to start from)");
  GenerationResult r;
  r.n_prompt = (int64_t)prompt.size();
  kv_.clear();
  const double t0 = now_seconds();
  FRUGAL_RETURN_IF_ERROR(
      forward_chunked(model_, backend_, kv_, prompt.data(), r.n_prompt, options_.n_batch, logits_.data()));
  const double t1 = now_seconds();
  r.prompt_s = t1 - t0;
  for (int32_t id : prompt) sampler.accept(id);

  StreamingDetokenizer detok(tokenizer_, /*render_special=*/false, /*continuation=*/true);
  bool cancelled = false;
  r.stop = StopReason::kMaxTokens;
  while (n_predict != 0) {
    const int32_t id = sampler.sample(logits_.data());
    sampler.accept(id);
    r.tokens.push_back(id);
    if (tokenizer_.is_eog(id)) {
      r.stop = StopReason::kEog;
      break;
    }
    const std::string text = detok.push(id);
    if (!text.empty() && !on_text(text)) {
      r.stop = StopReason::kCallback;
      cancelled = true;
      break;
    }
    if (n_predict > 0 && (int64_t)r.tokens.size() >= n_predict) break;  // no forward for the last token
    if (kv_.n_past() >= kv_.n_ctx()) {
      r.stop = StopReason::kContextFull;
      break;
    }
    FRUGAL_RETURN_IF_ERROR(forward_chunked(model_, backend_, kv_, &id, 1, 1, logits_.data()));
  }
  const std::string rest = detok.flush();
  if (!cancelled && !rest.empty()) on_text(rest);
  r.gen_s = now_seconds() - t1;
  return r;
}

}  // namespace frugal
