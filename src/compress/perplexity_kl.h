// KL divergence of a model against a base model on the perplexity chunks (what llama-perplexity's
// --kl-divergence mode reports), computed from both models' logits in double precision.
//
// Per scored token (same positions as perplexity.h): with p = softmax(base logits), q = softmax(model logits),
//   kld      = sum_i p_i (log p_i - log q_i)
//   nll, nll_base = -log q[next], -log p[next]
//   dp       = q[next] - p[next]          (the "Δp" of llama.cpp: probability of the right token)
//   same_top = argmax q == argmax p       (ties -> lowest id)
// summarize_kl() turns the per-token values into means with standard errors, percentiles and the ratio /
// difference of the perplexities. llama.cpp stores base log-probs as 16-bit values, so its KL figures carry
// ~1e-4 relative noise that ours do not.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "compress/perplexity.h"

namespace frugal {

struct TokenKl {
  double nll = 0;
  double nll_base = 0;
  double kld = 0;
  double dp = 0;
  bool same_top = false;
};

// One position: model logits q[n_vocab], base logits p[n_vocab], the token that follows.
TokenKl token_kl(const float* logits, const float* base_logits, int64_t n_vocab, int32_t next);

struct ValueWithError {
  double value = 0;
  double err = 0;
};

struct KlStats {
  int64_t count = 0;
  ValueWithError ppl, ppl_base;
  double cor_ln_ppl = 0;        // correlation of the per-token nll of model and base
  ValueWithError mean_ln_ratio;  // mean(nll - nll_base) = ln(PPL/PPL_base)
  ValueWithError ppl_ratio;      // PPL / PPL_base
  ValueWithError ppl_diff;       // PPL - PPL_base
  ValueWithError kld;            // mean KL divergence
  double kld_max = 0, kld_p999 = 0, kld_p99 = 0, kld_median = 0, kld_p10 = 0, kld_p5 = 0, kld_p1 = 0, kld_min = 0;
  ValueWithError dp;  // mean Δp (fraction, not percent)
  double dp_max = 0, dp_p999 = 0, dp_p99 = 0, dp_p95 = 0, dp_p90 = 0, dp_p75 = 0, dp_median = 0, dp_p25 = 0,
         dp_p10 = 0, dp_p5 = 0, dp_p1 = 0, dp_p01 = 0, dp_min = 0;
  ValueWithError dp_rms;    // sqrt(mean(dp^2))
  ValueWithError same_top;  // fraction of positions with the same arg-max
};

// Linear interpolation between the sorted values at fraction * (n - 1). `sorted` non-empty.
double percentile_sorted(const std::vector<double>& sorted, double fraction);

// Needs at least 2 tokens.
KlStats summarize_kl(const std::vector<TokenKl>& tokens);

// llama-perplexity-style report (the three "======" blocks), one figure per line.
std::string format_kl_report(const KlStats& s);

// ---- running a model against a base ----------------------------------------------------------------

// Supplies the base's logits of chunk `chunk` (fed: that chunk's n_ctx tokens as fed) as out[n_scored, n_vocab].
using BaseLogitsFn = std::function<Status(int64_t chunk, const std::vector<int32_t>& fed, float* out)>;

// Runs `base` on each chunk (it keeps its own F32 KV cache of plan.n_ctx positions). `base` and `backend`
// must outlive the function.
StatusOr<BaseLogitsFn> base_logits_from_model(Model& base, Backend& backend, const PerplexityPlan& plan);
// Reads the chunks from a saved logits file, which must outlive the function.
BaseLogitsFn base_logits_from_file(const LogitsFileReader& file);

// Errors (naming both files) when a base cannot be compared with the model: a different vocabulary size.
Status check_base_model(const std::string& model_name, const Model& model, const std::string& base_name,
                        const Model& base);
// ... or a saved file with another vocabulary size, context size, fewer chunks, or other tokens than
// `fed` (the n_chunks * n_ctx tokens this run feeds).
Status check_base_file(const std::string& model_name, int64_t n_vocab, const PerplexityPlan& plan,
                       const std::vector<int32_t>& fed, const std::string& base_name, const LogitsFileReader& file);

struct KlResult {
  PerplexityResult ppl;          // of the model
  std::vector<TokenKl> tokens;   // per scored token
  KlStats stats;
};

// Perplexity of `model` plus the per-token comparison with the base. `on_logits` (may be empty) also sees
// the model's logits of every chunk (e.g. to save them).
StatusOr<KlResult> compute_kl(Model& model, Backend& backend, const std::vector<int32_t>& tokens,
                              const PerplexityOptions& options, const BaseLogitsFn& base,
                              const ChunkProgress& progress, const ChunkLogitsCallback& on_logits = {});

}  // namespace frugal
