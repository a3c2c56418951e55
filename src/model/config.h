// ModelConfig: hyper-parameters read from GGUF metadata ({arch}.* keys), validated once at load.
#pragma once

#include <cstdint>
#include <string>

#include "backend/backend.h"
#include "base/status.h"
#include "gguf/gguf_file.h"

namespace frugal {

// Mixture of experts (deepseek, deepseek2; reference §3.3, §3.4.4). n_expert == 0: a dense model.
struct MoeConfig {
  int64_t n_layer_dense_lead = 0;  // layers [0, n) use the dense FFN (n_ff)
  int64_t n_expert = 0;            // E routed experts per MoE layer
  int64_t n_expert_used = 0;       // K experts per token
  int64_t n_expert_shared = 0;     // always-on shared experts (one FFN of width n_ff_exp * n_expert_shared)
  int64_t n_ff_exp = 0;            // width of one routed expert
  int64_t n_group = 1;             // expert groups (group-limited routing when > 1)
  int64_t n_group_used = 1;        // groups kept per token
  bool gate_sigmoid = false;       // scores = sigmoid(logits) (else softmax)
  bool norm_weights = false;       // divide the K weights by their sum
  float weights_scale = 0.f;       // multiply the K weights by this (0 or 1: no scaling)
};

// Multi-head latent attention (deepseek2; reference §3.4.3). kv_lora_rank == 0: not MLA.
struct MlaConfig {
  int64_t q_lora_rank = 0;   // 0: plain attn_q
  int64_t kv_lora_rank = 0;  // latent width cached per token (with qk_rope)
  int64_t qk_nope = 0;       // non-rotary part of each q/k head
  int64_t qk_rope = 0;       // rotary part (= rope.n_dims; one k_pe shared by all heads)
  int64_t v_head = 0;        // value head dim
};

struct ModelConfig {
  std::string arch;        // general.architecture
  std::string name;        // general.name
  int64_t n_vocab = 0;
  int64_t n_ctx_train = 0;
  int64_t n_embd = 0;      // D
  int64_t n_layer = 0;
  int64_t n_head = 0;      // H
  int64_t n_head_kv = 0;   // Hkv
  int64_t head_dim_k = 0;  // Dh of q/k
  int64_t head_dim_v = 0;  // Dh of v; 0: the V cache aliases the first columns of K (MLA latent cache)
  int64_t n_ff = 0;        // F
  float rms_eps = 1e-5f;
  float kq_scale = 0.f;    // 1/sqrt(head_dim_k) unless {arch}.attention.scale
  RopeParams rope;         // mode, n_dims, base, scaling
  MoeConfig moe;           // deepseek, deepseek2
  MlaConfig mla;           // deepseek2: KV cache rows are [c_kv | k_pe] (n_head_kv 1, head_dim_k
                           // kv_lora_rank + qk_rope, head_dim_v 0)

  int64_t n_embd_k_gqa() const { return n_head_kv * head_dim_k; }
  int64_t n_embd_v_gqa() const { return n_head_kv * head_dim_v; }
  std::string summary() const;  // one line for logs
};

// Reads the keys common to the llama-like architectures (llama, qwen2, deepseek). `rope_mode` is the
// architecture's RoPE layout. Errors name the file and the key.
StatusOr<ModelConfig> read_llama_like_config(const GgufFile& f, RopeMode rope_mode);

// Reads the {arch}.expert_* and leading_dense_block_count keys into c->moe. `gating_keys`: read
// expert_gating_func, expert_weights_norm and expert_group_* (deepseek2); otherwise softmax, no
// normalization, no groups (deepseek). Errors name the file and the key.
Status read_moe_config(const GgufFile& f, bool gating_keys, ModelConfig* c);

}  // namespace frugal
