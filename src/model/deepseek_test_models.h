// Test-only: the random deepseek / deepseek2 model specs shared by deepseek_test.cpp and mla_test.cpp.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "model/synth.h"

namespace frugal {

struct DeepseekCase {
  std::string name;
  SynthSpec spec;
  // Max NMSE of an ISA path vs the reference backend: float order only (F32), or a Q8 activation rounding
  // flipped by an ulp upstream (quantized types; as model_consistency_test).
  double ref_budget;
};

// gtest prints a parameter in test names/logs; keep it to the case name.
inline void PrintTo(const DeepseekCase& c, std::ostream* os) { *os << c.name; }

inline const std::vector<int32_t> kDeepseekTokens = {1,   403, 407, 261, 378, 432, 274, 287, 394, 410,
                                                     472, 370, 352, 266, 268, 315, 418, 419, 426, 13};

inline SynthSpec deepseek_base_spec(const std::string& arch, const std::string& type) {
  SynthSpec s;
  s.arch = arch;
  s.n_embd = 128;
  s.n_layer = 2;
  s.n_head = 4;
  s.n_head_kv = 4;
  s.n_ff = 192;
  s.n_ctx = 256;
  s.fan_in_std = true;  // unit-RMS projections keep activations O(1), so the tests are sensitive
  s.norm_jitter = true;
  s.seed = 11;
  s.weight_type = type;
  s.vocab_from = std::string(FRUGAL_SHARED_DIR) + "/models/stories260K.gguf";
  s.n_expert = 8;
  s.n_expert_used = 2;
  s.n_ff_exp = 64;
  s.kv_lora_rank = 64;
  s.qk_nope = 32;
  s.qk_rope = 16;
  s.v_head = 32;
  return s;
}

inline std::vector<DeepseekCase> deepseek_test_cases() {
  std::vector<DeepseekCase> r;
  {  // DeepSeekMoE: 1 dense layer, 2 shared experts, MHA
    SynthSpec s = deepseek_base_spec("deepseek", "F32");
    s.n_layer_dense_lead = 1;
    s.n_expert_shared = 2;
    r.push_back({"deepseek_dense1_shared2_F32", s, 1e-9});
  }
  {  // DeepSeekMoE: no dense layer, no shared expert, GQA, Q8_0
    SynthSpec s = deepseek_base_spec("deepseek", "Q8_0");
    s.n_head_kv = 2;
    r.push_back({"deepseek_dense0_shared0_gqa_Q8_0", s, 1e-3});
  }
  {  // V3-like: q-LoRA, attn_kv_b, 1 dense layer, sigmoid + bias, groups 4/2, norm, scale, 1 shared, YaRN
    SynthSpec s = deepseek_base_spec("deepseek2", "F32");
    s.q_lora_rank = 96;
    s.mla_split = false;
    s.n_layer_dense_lead = 1;
    s.n_expert = 16;
    s.n_expert_used = 4;
    s.n_expert_groups = 4;
    s.n_expert_groups_used = 2;
    s.gate_sigmoid = true;
    s.exp_probs_b = true;
    s.expert_weights_norm = true;
    s.expert_weights_scale = 2.5f;
    s.n_expert_shared = 1;
    s.yarn_factor = 40.f;
    s.yarn_log_mul = 0.0707f;
    s.yarn_orig_ctx = 64;
    r.push_back({"deepseek2_v3_qlora_kvb_groups_yarn_F32", s, 1e-9});
  }
  {  // V2-Lite-like: plain attn_q, split k_b/v_b, no dense layer, softmax, no groups, 2 shared
    SynthSpec s = deepseek_base_spec("deepseek2", "F32");
    s.n_expert_shared = 2;
    r.push_back({"deepseek2_lite_split_F32", s, 1e-9});
  }
  {  // q-LoRA + split, 3 layers with 1 dense, softmax with groups 2/1, no shared expert, Q8_0
    SynthSpec s = deepseek_base_spec("deepseek2", "Q8_0");
    s.n_layer = 3;
    s.q_lora_rank = 64;
    s.n_layer_dense_lead = 1;
    s.n_expert_groups = 2;
    s.n_expert_groups_used = 1;
    r.push_back({"deepseek2_qlora_split_groups_softmax_Q8_0", s, 1e-3});
  }
  {  // attn_kv_b, plain attn_q, sigmoid without bias, 1 shared; Q4_K_M (rows of 128/64/32 fall back)
    SynthSpec s = deepseek_base_spec("deepseek2", "Q4_K_M");
    s.mla_split = false;
    s.gate_sigmoid = true;
    s.n_expert_shared = 1;
    s.n_layer_dense_lead = 1;
    r.push_back({"deepseek2_kvb_sigmoid_Q4_K_M", s, 1e-3});
  }
  return r;
}

}  // namespace frugal
