// Multi-head latent attention of deepseek2 (reference §3.4.3), absorbed form with a latent KV cache.
//
// Per token (position p), H heads, hk = qk_nope + qk_rope, L = kv_lora_rank, R = qk_rope:
//   q     = attn_q·a  or  attn_q_b·(RMSNorm(attn_q_a·a)·attn_q_a_norm)     [H, hk] = [q_nope (nope) | q_pe (R)]
//   kvp   = attn_kv_a_mqa·a                                                [L + R] = [c_kv | k_pe]
//   c_kv  = RMSNorm(c_kv)·attn_kv_a_norm ; k_pe = RoPE(k_pe, p) ; q_pe = RoPE(q_pe, p)   (NORM, YaRN)
//   cache row p = [c_kv | k_pe]                     the only per-token state: (L + R) values per layer
//   q'_h  = [W_kb,h · q_nope_h | q_pe_h]            [L + R]; W_kb,h = attn_k_b[h] {nope -> L}
//   ol_h  = MQA(q'_h over rows [c_kv | k_pe], V = c_kv = first L columns of the same rows)   [L]
//   o_h   = W_vb,h · ol_h                           [v_head]; W_vb,h = attn_v_b[h] {L -> v_head}
//   x    += attn_output · concat_h(o_h)
// The score scale (config kq_scale) uses hk, not L + R. Files in the older attn_kv_b form get W_kb
// derived at load time (dequantized, transposed per head, kept in F32) and W_vb as a view of kv_b's rows.
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

struct MlaWeights {
  WeightView q;                      // {D, H*hk} when q_lora_rank == 0
  WeightView q_a;                    // {D, q_lora}
  const float* q_a_norm = nullptr;   // [q_lora]
  WeightView q_b;                    // {q_lora, H*hk}
  WeightView kv_a_mqa;               // {D, L + R}
  const float* kv_a_norm = nullptr;  // [L]
  std::vector<WeightView> k_b;       // [H] views {nope, L}: L rows of nope (W_kb,h)
  std::vector<WeightView> v_b;       // [H] views {L, v_head}: v_head rows of L (W_vb,h)
  WeightView wo;                     // {H*v_head, D}
  std::vector<float> k_b_owned;      // [H, L, nope] f32, when derived from attn_kv_b
  WeightView kv_b;                   // {L, H*(nope+v_head)}, the file's attn_kv_b (unset in split form)
  bool split_form = false;           // the file had attn_k_b/attn_v_b
};

// Loads the attention tensors of `layer` (either form). Errors name the tensor.
Status load_mla(WeightLoader& L, const GgufFile& f, const ModelConfig& c, int64_t layer, MlaWeights* w);

// Scratch of mla_attention, grown on demand and reused.
struct MlaWorkspace {
  std::vector<float> cq, q, kv, c, qa, gather, part, ol, o, out;
  std::vector<Backend::AttentionSeq> attn_seqs;
  std::vector<Backend::MatmulJob> jobs;
};

// Common prefix of both MLA formulations: q [T, H*hk] with q_pe roped and kv [T, L+R] = [normed c_kv |
// roped k_pe], into ws.q and ws.kv. rope_k false leaves k_pe unroped (the caller ropes it while writing
// the cache: Backend::rope_kv_write).
void mla_qkv(Backend& be, const ModelConfig& c, const MlaWeights& w, const int32_t* pos, int64_t T, const float* a,
             MlaWorkspace& ws, bool rope_k = true);

// x[T, D] += MLA(a[T, D]) for layer `layer`: stores each token's latent row at its slot, then attends each
// sequence of the batch over its own positions (absorbed form).
void mla_attention(Backend& be, const ModelConfig& c, const MlaWeights& w, KvCache& kv, int64_t layer, const Batch& b,
                   MlaWorkspace& ws, const float* a, float* x);

}  // namespace frugal
