// Building blocks shared by the llama-like architectures (reference §3.0): pre-norm GQA attention with
// RoPE and a KV cache, the SwiGLU FFN, and the output head. Architectures own their weight structs and
// call these in the order of their forward pass.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "base/status.h"
#include "model/config.h"
#include "model/kv_cache.h"
#include "model/weights.h"

namespace frugal {

// Weights of one attention block: q {D, H*Dh}, k/v {D, Hkv*Dh}, o {H*Dhv, D}; biases optional.
struct AttentionWeights {
  WeightView wq, wk, wv, wo;
  const float* bq = nullptr;
  const float* bk = nullptr;
  const float* bv = nullptr;
};

struct FfnWeights {
  WeightView gate, up, down;  // gate/up {D, F}, down {F, D}
};

// Per-forward scratch buffers, grown on demand and reused (no allocation in steady state).
struct Workspace {
  std::vector<float> x, a, q, k, v, o, g, u, tmp;
  std::vector<int32_t> ids;
  void reserve(const ModelConfig& c, int64_t T);
};

Status load_attention(WeightLoader& L, const ModelConfig& c, int64_t layer, bool biases_required,
                      AttentionWeights* w);
Status load_ffn(WeightLoader& L, const ModelConfig& c, int64_t layer, int64_t n_ff, FfnWeights* w);

// x[T, D] += Attention(a[T, D]) for layer `layer`; stores this step's K/V in the cache.
void attention_block(Backend& be, const ModelConfig& c, const AttentionWeights& w, KvCache& kv, int64_t layer,
                     const int32_t* pos, int64_t T, Workspace& ws, const float* a, float* x);
// x[T, D] += down(silu(gate(a)) * up(a))
void ffn_block(Backend& be, const ModelConfig& c, const FfnWeights& w, int64_t T, Workspace& ws, const float* a,
               float* x);
// logits = output · rmsnorm(x rows) for all T rows or only the last.
void output_head(Backend& be, const ModelConfig& c, const float* norm, const WeightView& output, int64_t T,
                 bool all, Workspace& ws, const float* x, float* logits);

// Checks common to every forward call: token ids inside the vocabulary, positions inside the cache.
Status check_forward_args(const ModelConfig& c, const KvCache& kv, const int32_t* tokens, const int32_t* pos,
                          int64_t T);

}  // namespace frugal
