// Mixture-of-experts FFN of deepseek / deepseek2 (reference §3.3, §3.4.4): routing and grouped execution.
//
//   logits[T, E] = ffn_gate_inp · f                         router, f32
//   per token:   ids[K], w[K] = route_token(logits)          softmax/sigmoid, bias for selection only, groups
//   per expert e selected by any token of the batch (ascending e): its tokens' rows of f are gathered and
//                the expert runs ONCE over them: y = down_e(silu(gate_e·f) * up_e·f)   (backend matmul on
//                expert e's slice of the 3-D ffn_*_exps tensors; experts nobody picked are never read)
//   out[t] = sum over t's experts in ascending id of w·y  (+ shared experts(f[t]), unweighted)
//   x[t] += out[t]
// Experts about to run for the first time (stats counters at 0) get madvise(WILLNEED) on their slices
// first, so a cold, memory-mapped model reads them from disk ahead of the matmuls.
//
// A token's result never depends on the other tokens in the batch (fixed per-token summation order and
// the backend's row-independent matmul).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "base/status.h"
#include "model/config.h"
#include "model/layers.h"
#include "model/model.h"
#include "model/weights.h"

namespace frugal {

struct MoeLayerWeights {
  WeightView gate_inp;                  // router {D, E}
  const float* exp_probs_b = nullptr;   // [E] selection bias (V3/R1) or null
  WeightView gate_exps, up_exps;        // E stacked {D, F_exp}: E * F_exp rows of D
  WeightView down_exps;                 // E stacked {F_exp, D}: E * D rows of F_exp
  FfnWeights shared;                    // {D, F_exp * n_shared} ...; gate.data == null without shared experts
};

// Loads blk.{layer}.ffn_gate_inp, exp_probs_b (optional), ffn_{gate,up,down}_exps and the shared
// experts (when c.moe.n_expert_shared > 0). Errors name the tensor.
Status load_moe_layer(WeightLoader& L, const ModelConfig& c, int64_t layer, MoeLayerWeights* w);

// Routes one token (§3.4.4, llama.cpp build_moe_ffn):
//   p = softmax(logits) or sigmoid(logits); s = p + bias (bias may be null; selection only)
//   n_group > 1: group score = sum of the two largest s in each group of E/n_group contiguous experts;
//                the n_group_used best groups stay, other experts get s = -inf
//   ids = the K largest s, in descending s (ties: lower expert id first)
//   w[j] = p[ids[j]] (unbiased); norm_weights: w /= max(sum w, 6.103515625e-5); weights_scale != 0: w *= scale
// logits [E]; ids, weights [K]; scratch [2 * E + n_group] floats.
void route_token(const MoeConfig& m, const float* logits, const float* bias, int32_t* ids, float* weights,
                 float* scratch);

// Per-layer, per-expert routed token counts and read counts, for metrics and `frugal bench --moe-stats`.
// Written by the forward pass (engine thread), readable from any thread (relaxed atomics: each counter
// is exact, a snapshot across counters is not).
class MoeStats {
 public:
  MoeStats(int64_t n_layer, int64_t n_expert);

  int64_t n_layer() const { return n_layer_; }
  int64_t n_expert() const { return n_expert_; }
  bool is_moe_layer(int64_t layer) const { return expert_bytes_[(size_t)layer] > 0; }
  // Tokens routed to expert e of layer l since construction / reset().
  uint64_t tokens(int64_t layer, int64_t expert) const;
  // Times expert e of layer l was run (once per forward that routed at least one token to it).
  uint64_t runs(int64_t layer, int64_t expert) const;
  // Tokens that went through the MoE layers (counted once per token, at the first MoE layer).
  uint64_t n_tokens() const { return n_tokens_.load(std::memory_order_relaxed); }
  void reset();

  // Static sizes, set by the model at load: bytes of one routed expert (gate + up + down slices) of layer l
  // (0 for dense layers), and parameters of one routed expert.
  uint64_t expert_bytes(int64_t layer) const { return expert_bytes_[(size_t)layer]; }
  uint64_t expert_params(int64_t layer) const { return expert_params_[(size_t)layer]; }
  void set_expert_size(int64_t layer, uint64_t bytes, uint64_t params);

  // Called by moe_ffn.
  void record(int64_t layer, int64_t expert, uint64_t n_tokens);
  void add_tokens(uint64_t n) { n_tokens_.fetch_add(n, std::memory_order_relaxed); }

 private:
  int64_t n_layer_, n_expert_;
  std::unique_ptr<std::atomic<uint64_t>[]> tokens_, runs_;
  std::atomic<uint64_t> n_tokens_{0};
  std::vector<uint64_t> expert_bytes_, expert_params_;
};

// Records the byte and parameter size of one routed expert of `layer` (from w's expert tensors) in stats.
void set_moe_layer_size(MoeStats& stats, const ModelConfig& c, int64_t layer, const MoeLayerWeights& w);
// Bytes/params a decode step does not touch: (E - K) experts of every MoE layer.
uint64_t moe_unread_bytes(const MoeStats& stats, const MoeConfig& m);
uint64_t moe_inactive_params(const MoeStats& stats, const MoeConfig& m);

// Parameters a decode token uses: every parameter but the (E - K) routed experts it skips in each MoE
// layer. Dense models: n_params().
uint64_t active_params(const Model& model);

// Scratch of moe_ffn, grown on demand and reused.
struct MoeWorkspace {
  std::vector<float> logits, weights, route_scratch, xs, g, u, y, acc, sg, su, sy;
  std::vector<Backend::MatmulJob> jobs;
  std::vector<int32_t> ids, rows, count, offset;
  std::vector<float> row_w;
};

// x[T, D] += MoE(f[T, D]) for MoE layer `layer`; counts into `stats` when not null.
void moe_ffn(Backend& be, const ModelConfig& c, const MoeLayerWeights& w, int64_t layer, int64_t T, const float* f,
             float* x, MoeWorkspace& ws, MoeStats* stats);

}  // namespace frugal
