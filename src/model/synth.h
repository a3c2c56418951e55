// Synthetic random-weight models: a GGUF of a given architecture and size, with the metadata keys and
// tensor names/shapes llama.cpp's converter writes, filled with seeded random weights.
//
// Used by tests (tiny models of each architecture, every weight format) and by benchmarks (a ~1.1B llama
// model) without shipping model files. Generation streams: each tensor is produced while the file is
// written (GgufWriter::add_tensor_lazy), row by row in parallel, so memory stays at one tensor's bytes
// plus one f32 row per thread, whatever the model size.
//
// Determinism: the weights of tensor NAME depend only on (seed, NAME, shape): a model written twice with
// the same spec is byte-identical, and models that differ only in weight_type hold the same f32 values
// before quantization (so a Q8_0 model dequantizes to about its F32 twin). Independent of n_threads.
//
// deepseek / deepseek2: layers [0, n_layer_dense_lead) have a dense FFN (n_ff), the others n_expert routed
// experts (3-D ffn_*_exps tensors, router ffn_gate_inp always F32) and n_expert_shared shared experts.
// deepseek2 attention is MLA: attn_q (q_lora_rank 0) or attn_q_a/attn_q_a_norm/attn_q_b, attn_kv_a_mqa,
// attn_kv_a_norm, then either the split attn_k_b/attn_v_b form with the *_mla keys (mla_split, what
// llama.cpp's converter writes today) or the older attn_kv_b form. n_embd/n_head/n_head_kv only describe the
// deepseek2 key/value layout through those forms (the head dims come from qk_nope/qk_rope/v_head).
//
// Weight types: F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K apply to every 2-D tensor (1-D norms
// and biases are always F32). Q4_K_M / Q5_K_M (and Q4_K_S / Q5_K_S) follow llama-quantize's recipe, the one
// `frugal quantize` uses (model/quant_recipe.h): output.weight (or a tied
// token_embd) Q6_K; attn_v.weight and ffn_down.weight Q6_K in layers i with i < n/8 || i >= 7n/8 ||
// (i - n/8) % 3 == 2; every other 2-D tensor Q4_K (Q5_K). A tensor whose row length is not a multiple of
// its type's block size falls back: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, then F16.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace frugal {

struct SynthSpec {
  std::string arch = "llama";  // "llama", "qwen2" (q/k/v biases, NEOX rope), "deepseek", "deepseek2"
  int n_vocab = 0;             // 0 -> the vocabulary size of vocab_from (or of the synthetic vocab: 259)
  int n_embd = 64, n_layer = 2, n_head = 4, n_head_kv = 4, n_ff = 128, n_ctx = 2048;
  bool tied_output = false;  // no output.weight -> reuse token_embd
  float rope_base = 10000.f, rms_eps = 1e-5f;
  float weight_std = 0.02f;  // matrices and biases N(0, std^2); norms = 1 unless norm_jitter
  // Matrices N(0, 1/row length) instead (each projection keeps unit RMS, as the golden models),
  // token_embd N(0, 1); weight_std still applies to biases and exp_probs_b.
  bool fan_in_std = false;
  bool norm_jitter = false;  // norm weights uniform [0.8, 1.2] (makes a skipped norm visible)
  uint64_t seed = 1;
  std::string weight_type = "F32";  // see the header comment
  // GGUF whose tokenizer.* keys are copied (e.g. ../shared/vocab/ggml-vocab-deepseek-llm.gguf,
  // ../shared/models/stories260K.gguf); empty -> a minimal synthetic SPM byte vocabulary: <unk> <s> </s>,
  // the 256 byte tokens <0x00>..<0xFF>, then (if n_vocab is larger) distinct lowercase pieces.
  std::string vocab_from;
  int n_threads = 0;  // generation threads; 0 -> all hardware threads

  // MoE (deepseek, deepseek2)
  int n_expert = 0, n_expert_used = 0, n_expert_shared = 0, n_ff_exp = 0, n_layer_dense_lead = 0;
  int n_expert_groups = 1, n_expert_groups_used = 1;  // deepseek2: expert_group_count / _used_count
  bool gate_sigmoid = false;          // deepseek2: expert_gating_func 2 (sigmoid), else 1 (softmax)
  bool exp_probs_b = false;           // deepseek2: blk.N.exp_probs_b.bias selection bias
  bool expert_weights_norm = false;   // deepseek2
  float expert_weights_scale = 1.f;
  // MLA (deepseek2)
  int q_lora_rank = 0;  // 0: plain attn_q
  int kv_lora_rank = 0, qk_nope = 0, qk_rope = 0, v_head = 0;
  bool mla_split = true;      // attn_k_b/attn_v_b + key_length_mla/value_length_mla, else attn_kv_b
  float yarn_factor = 0.f;    // > 1: rope.scaling.type yarn with this factor
  float yarn_log_mul = 0.f;   // rope.scaling.yarn_log_multiplier (0.1 * mscale_all_dim)
  int yarn_orig_ctx = 4096;   // rope.scaling.original_context_length
};

// Writes the model to `path` (via path + ".tmp", renamed at the end). Errors: an invalid spec
// (invalid_argument naming the field), an unreadable vocab_from, an I/O failure naming the path.
Status write_synth_model(const SynthSpec& spec, const std::string& path);

}  // namespace frugal
