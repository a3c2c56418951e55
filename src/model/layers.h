// Building blocks shared by the llama-like architectures (reference §3.0): pre-norm GQA attention with
// RoPE and a KV cache, the SwiGLU FFN, and the output head. Architectures own their weight structs and
// call these in the order of their forward pass.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "base/status.h"
#include "model/batch.h"
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
  std::vector<Backend::AttentionSeq> attn_seqs;
  void reserve(const ModelConfig& c, int64_t T);
};

Status load_attention(WeightLoader& L, const ModelConfig& c, int64_t layer, bool biases_required,
                      AttentionWeights* w);
Status load_ffn(WeightLoader& L, const ModelConfig& c, int64_t layer, int64_t n_ff, FfnWeights* w);

// x[T, D] += Attention(a[T, D]) for layer `layer`; stores this step's K/V at the batch's slots, then
// attends each sequence of the batch over its own positions.
void attention_block(Backend& be, const ModelConfig& c, const AttentionWeights& w, KvCache& kv, int64_t layer,
                     const Batch& b, Workspace& ws, const float* a, float* x);
// x[T, D] += down(silu(gate(a)) * up(a))
void ffn_block(Backend& be, const ModelConfig& c, const FfnWeights& w, int64_t T, Workspace& ws, const float* a,
               float* x);
// logits[n_logits, V] = output · rmsnorm(x rows b.logit_rows).
void output_head(Backend& be, const ModelConfig& c, const float* norm, const WeightView& output, const Batch& b,
                 Workspace& ws, const float* x, float* logits);

// Checks common to every forward_batch call: a non-empty batch, token ids inside the vocabulary, slots
// inside the storage, sequences covering the batch, logit rows inside it.
Status check_batch(const ModelConfig& c, const KvCache& kv, const Batch& b);

}  // namespace frugal
