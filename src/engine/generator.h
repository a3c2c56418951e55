// Generator: single-sequence text generation on one Model + KvCache + Tokenizer + Backend.
//
//   prompt ids --prefill (chunks of n_batch tokens)--> logits of the last prompt token
//   loop: id = sampler.sample(logits); sampler.accept(id);
//         stop on is_eog(id) / n_predict tokens / context full / callback returning false;
//         text = detokenizer.push(id) -> on_text(text); logits = forward(id) (one token)
//
// Timings: prompt time is the whole prefill; generation time runs from the end of the prefill to the last
// sampled token and includes sampling and detokenization (what a user sees). Model load time is the
// caller's (it owns Model::load).
//
// The multi-sequence engine (scheduler, flattened batches) replaces this for serving; this class is the
// simple path for `frugal run` and the benchmarks. Thread-safety: one thread; the Model, Backend and
// KvCache are borrowed and must outlive the Generator.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "base/status.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "sample/sampler.h"
#include "tokenizer/tokenizer.h"

namespace frugal {

struct GeneratorOptions {
  int64_t n_batch = 512;  // prompt tokens per forward during prefill (> 0)
};

enum class StopReason { kEog, kMaxTokens, kContextFull, kCallback };
const char* stop_reason_name(StopReason r);

struct GenerationResult {
  std::vector<int32_t> tokens;  // sampled ids, the end-of-generation token included when it stopped there
  StopReason stop = StopReason::kMaxTokens;
  int64_t n_prompt = 0;
  double prompt_s = 0;  // prefill wall time
  double gen_s = 0;     // generation wall time (see above)

  double prompt_tokens_per_s() const { return prompt_s > 0 ? (double)n_prompt / prompt_s : 0; }
  double gen_tokens_per_s() const { return gen_s > 0 ? (double)tokens.size() / gen_s : 0; }
};

// Receives detokenized text as it becomes complete (UTF-8 sequences are never split). Return false to stop.
using TextCallback = std::function<bool(const std::string& text)>;

class Generator {
 public:
  Generator(Model& model, const Tokenizer& tokenizer, Backend& backend, KvCache& kv, GeneratorOptions options = {});

  // Clears the cache, prefills `prompt` (accepting its ids into the sampler's penalty window) and
  // generates up to n_predict tokens (< 0: until end of generation or a full context).
  // Errors: empty prompt, a prompt longer than the context, forward errors.
  StatusOr<GenerationResult> generate(const std::vector<int32_t>& prompt, int64_t n_predict, Sampler& sampler,
                                      const TextCallback& on_text);

  // Logits of the last token fed ([n_vocab]).
  const std::vector<float>& logits() const { return logits_; }

 private:
  Model& model_;
  const Tokenizer& tokenizer_;
  Backend& backend_;
  KvCache& kv_;
  GeneratorOptions options_;
  std::vector<float> logits_;
};

// Appends tokens[0, T) to `kv` at positions kv.n_past().. in forwards of at most n_batch tokens and writes
// the last token's logits to logits_last[n_vocab] (also used by `frugal bench`). Errors: the tokens do
// not fit the context (nothing is run), forward errors.
Status forward_chunked(Model& model, Backend& backend, KvCache& kv, const int32_t* tokens, int64_t T,
                       int64_t n_batch, float* logits_last);

}  // namespace frugal
