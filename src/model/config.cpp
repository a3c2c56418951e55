#include "model/config.h"

#include <cmath>
#include <cstdio>

namespace frugal {

namespace {

// Per-layer arrays (e.g. head_count as i32[n_layer]) are accepted when all entries agree.
StatusOr<int64_t> get_uniform_int(const GgufFile& f, const std::string& key, int64_t dflt) {
  const GgufValue* v = f.find(key);
  if (v && v->type == GgufType::ARRAY) {
    FRUGAL_ASSIGN_OR_RETURN(std::vector<int64_t> a, f.get_int_array(key));
    if (a.empty()) return corrupt(f.path() + ": key '" + key + "': empty array");
    for (int64_t x : a)
      if (x != a[0]) return unsupported(f.path() + ": key '" + key + "': per-layer values differ (not supported)");
    return a[0];
  }
  return f.get_int(key, dflt);
}

Status positive(const GgufFile& f, const std::string& key, int64_t v, int64_t max) {
  if (v <= 0 || v > max)
    return corrupt(f.path() + ": " + key + " = " + std::to_string(v) + " out of range 1.." + std::to_string(max));
  return Status::Ok();
}

}  // namespace

StatusOr<ModelConfig> read_llama_like_config(const GgufFile& f, RopeMode rope_mode) {
  ModelConfig c;
  FRUGAL_ASSIGN_OR_RETURN(c.arch, f.get_string("general.architecture"));
  FRUGAL_ASSIGN_OR_RETURN(c.name, f.get_string("general.name", ""));
  const std::string a = c.arch + ".";
  FRUGAL_ASSIGN_OR_RETURN(c.n_ctx_train, f.get_int(a + "context_length"));
  FRUGAL_ASSIGN_OR_RETURN(c.n_embd, f.get_int(a + "embedding_length"));
  FRUGAL_ASSIGN_OR_RETURN(c.n_layer, f.get_int(a + "block_count"));
  FRUGAL_ASSIGN_OR_RETURN(c.n_ff, get_uniform_int(f, a + "feed_forward_length", 0));
  FRUGAL_ASSIGN_OR_RETURN(c.n_head, get_uniform_int(f, a + "attention.head_count", 0));
  FRUGAL_RETURN_IF_ERROR(positive(f, a + "embedding_length", c.n_embd, 1 << 20));
  FRUGAL_RETURN_IF_ERROR(positive(f, a + "block_count", c.n_layer, 4096));
  FRUGAL_RETURN_IF_ERROR(positive(f, a + "attention.head_count", c.n_head, 1 << 14));
  FRUGAL_RETURN_IF_ERROR(positive(f, a + "context_length", c.n_ctx_train, int64_t(1) << 32));
  FRUGAL_ASSIGN_OR_RETURN(c.n_head_kv, get_uniform_int(f, a + "attention.head_count_kv", c.n_head));
  FRUGAL_RETURN_IF_ERROR(positive(f, a + "attention.head_count_kv", c.n_head_kv, c.n_head));
  if (c.n_head % c.n_head_kv != 0)
    return corrupt(f.path() + ": head_count " + std::to_string(c.n_head) + " is not a multiple of head_count_kv " +
                   std::to_string(c.n_head_kv));
  FRUGAL_ASSIGN_OR_RETURN(c.head_dim_k, f.get_int(a + "attention.key_length", c.n_embd / c.n_head));
  FRUGAL_ASSIGN_OR_RETURN(c.head_dim_v, f.get_int(a + "attention.value_length", c.n_embd / c.n_head));
  FRUGAL_RETURN_IF_ERROR(positive(f, a + "attention.key_length", c.head_dim_k, 1 << 14));
  FRUGAL_RETURN_IF_ERROR(positive(f, a + "attention.value_length", c.head_dim_v, 1 << 14));
  FRUGAL_ASSIGN_OR_RETURN(double eps, f.get_float(a + "attention.layer_norm_rms_epsilon"));
  c.rms_eps = (float)eps;
  FRUGAL_ASSIGN_OR_RETURN(double scale, f.get_float(a + "attention.scale", 0.0));
  c.kq_scale = scale != 0.0 ? (float)scale : 1.0f / std::sqrt((float)c.head_dim_k);

  // vocab: {arch}.vocab_size else the tokenizer's token count
  const GgufValue* toks = f.find("tokenizer.ggml.tokens");
  int64_t n_tok = (toks && toks->type == GgufType::ARRAY) ? (int64_t)toks->count : 0;
  FRUGAL_ASSIGN_OR_RETURN(c.n_vocab, f.get_int(a + "vocab_size", n_tok));

  // RoPE
  c.rope.mode = rope_mode;
  FRUGAL_ASSIGN_OR_RETURN(int64_t n_rot, f.get_int(a + "rope.dimension_count", c.head_dim_k));
  if (n_rot <= 0 || n_rot > c.head_dim_k || n_rot % 2 != 0)
    return corrupt(f.path() + ": rope.dimension_count " + std::to_string(n_rot) + " invalid for head dim " +
                   std::to_string(c.head_dim_k));
  c.rope.n_dims = (int)n_rot;
  FRUGAL_ASSIGN_OR_RETURN(double base, f.get_float(a + "rope.freq_base", 10000.0));
  c.rope.freq_base = (float)base;
  FRUGAL_ASSIGN_OR_RETURN(std::string scaling, f.get_string(a + "rope.scaling.type", "linear"));
  FRUGAL_ASSIGN_OR_RETURN(double factor, f.get_float(a + "rope.scaling.factor", 0.0));
  if (factor == 0.0) {
    FRUGAL_ASSIGN_OR_RETURN(double linear, f.get_float(a + "rope.scale_linear", 0.0));
    factor = linear;
  }
  FRUGAL_ASSIGN_OR_RETURN(int64_t n_ctx_orig, f.get_int(a + "rope.scaling.original_context_length", c.n_ctx_train));
  c.rope.n_ctx_orig = (int)n_ctx_orig;
  if (scaling == "none") {
    c.rope.freq_scale = 1.f;
  } else if (scaling == "linear" || scaling == "yarn") {
    c.rope.freq_scale = factor == 0.0 ? 1.f : (float)(1.0 / factor);
  } else {
    return unsupported(f.path() + ": rope.scaling.type '" + scaling + "' is not supported (none, linear, yarn)");
  }
  if (scaling == "yarn" && c.rope.freq_scale != 1.f) {
    // Generic YaRN (llama.cpp llama_context setup): attn_factor = mscale(F) / (1 + 0.1 ln F), which rope
    // multiplies back by (1 + 0.1 ln F); extra user factor rope.scaling.attn_factor.
    c.rope.ext_factor = 1.f;
    const float F = 1.f / c.rope.freq_scale;
    const float mscale = F <= 1.f ? 1.f : 1.f + 0.1f * std::log(F);
    c.rope.attn_factor = mscale / (1.f + 0.1f * std::log(F));
  }
  FRUGAL_ASSIGN_OR_RETURN(double attn_factor, f.get_float(a + "rope.scaling.attn_factor", 1.0));
  c.rope.attn_factor *= (float)attn_factor;
  return c;
}

Status read_moe_config(const GgufFile& f, bool gating_keys, ModelConfig* c) {
  MoeConfig& m = c->moe;
  const std::string a = c->arch + ".";
  FRUGAL_ASSIGN_OR_RETURN(m.n_expert, f.get_int(a + "expert_count"));
  FRUGAL_ASSIGN_OR_RETURN(m.n_expert_used, f.get_int(a + "expert_used_count"));
  FRUGAL_ASSIGN_OR_RETURN(m.n_ff_exp, f.get_int(a + "expert_feed_forward_length"));
  FRUGAL_ASSIGN_OR_RETURN(m.n_expert_shared, f.get_int(a + "expert_shared_count", 0));
  FRUGAL_ASSIGN_OR_RETURN(m.n_layer_dense_lead, f.get_int(a + "leading_dense_block_count", 0));
  FRUGAL_ASSIGN_OR_RETURN(double scale, f.get_float(a + "expert_weights_scale", 0.0));
  m.weights_scale = (float)scale;
  FRUGAL_RETURN_IF_ERROR(positive(f, a + "expert_count", m.n_expert, 1 << 16));
  FRUGAL_RETURN_IF_ERROR(positive(f, a + "expert_used_count", m.n_expert_used, m.n_expert));
  FRUGAL_RETURN_IF_ERROR(positive(f, a + "expert_feed_forward_length", m.n_ff_exp, 1 << 20));
  if (m.n_expert_shared < 0 || m.n_expert_shared > 64)
    return corrupt(f.path() + ": " + a + "expert_shared_count = " + std::to_string(m.n_expert_shared) +
                   " out of range 0..64");
  if (m.n_layer_dense_lead < 0 || m.n_layer_dense_lead > c->n_layer)
    return corrupt(f.path() + ": " + a + "leading_dense_block_count = " + std::to_string(m.n_layer_dense_lead) +
                   " out of range 0.." + std::to_string(c->n_layer));
  if (m.n_layer_dense_lead > 0) FRUGAL_RETURN_IF_ERROR(positive(f, a + "feed_forward_length", c->n_ff, 1 << 20));
  if (!gating_keys) return Status::Ok();
  FRUGAL_ASSIGN_OR_RETURN(int64_t gating, f.get_int(a + "expert_gating_func", 1));
  if (gating != 1 && gating != 2)
    return unsupported(f.path() + ": " + a + "expert_gating_func = " + std::to_string(gating) +
                       " is not supported (1 softmax, 2 sigmoid)");
  m.gate_sigmoid = gating == 2;
  FRUGAL_ASSIGN_OR_RETURN(m.norm_weights, f.get_bool(a + "expert_weights_norm", false));
  FRUGAL_ASSIGN_OR_RETURN(m.n_group, f.get_int(a + "expert_group_count", 1));
  FRUGAL_ASSIGN_OR_RETURN(m.n_group_used, f.get_int(a + "expert_group_used_count", m.n_group));
  if (m.n_group <= 0) m.n_group = 1;  // older conversions write 0 for "no groups"
  if (m.n_group_used <= 0) m.n_group_used = m.n_group;
  if (m.n_expert % m.n_group != 0 || m.n_group_used > m.n_group)
    return corrupt(f.path() + ": expert groups " + std::to_string(m.n_group) + " (using " +
                   std::to_string(m.n_group_used) + ") do not divide " + std::to_string(m.n_expert) + " experts");
  if (m.n_group_used * (m.n_expert / m.n_group) < m.n_expert_used)
    return corrupt(f.path() + ": " + std::to_string(m.n_group_used) + " expert groups of " +
                   std::to_string(m.n_expert / m.n_group) + " cannot supply " + std::to_string(m.n_expert_used) +
                   " experts per token");
  return Status::Ok();
}

std::string ModelConfig::summary() const {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "arch %s, n_vocab %lld, n_embd %lld, n_layer %lld, n_head %lld, n_head_kv %lld, head_dim %lld, "
                "n_ff %lld, rope %s base %g scale %g, ctx_train %lld",
                arch.c_str(), (long long)n_vocab, (long long)n_embd, (long long)n_layer, (long long)n_head,
                (long long)n_head_kv, (long long)head_dim_k, (long long)n_ff,
                rope.mode == RopeMode::kNeox ? "neox" : "norm", rope.freq_base, rope.freq_scale,
                (long long)n_ctx_train);
  std::string r = buf;
  if (moe.n_expert > 0) {
    std::snprintf(buf, sizeof buf,
                  "; moe: %lld experts, %lld used, %lld shared, n_ff_exp %lld, %lld dense lead, groups %lld/%lld, "
                  "%s%s, scale %g",
                  (long long)moe.n_expert, (long long)moe.n_expert_used, (long long)moe.n_expert_shared,
                  (long long)moe.n_ff_exp, (long long)moe.n_layer_dense_lead, (long long)moe.n_group_used,
                  (long long)moe.n_group, moe.gate_sigmoid ? "sigmoid" : "softmax", moe.norm_weights ? ", norm" : "",
                  moe.weights_scale);
    r += buf;
  }
  if (mla.kv_lora_rank > 0) {
    std::snprintf(buf, sizeof buf, "; mla: q_lora %lld, kv_lora %lld, qk_nope %lld, qk_rope %lld, v_head %lld",
                  (long long)mla.q_lora_rank, (long long)mla.kv_lora_rank, (long long)mla.qk_nope,
                  (long long)mla.qk_rope, (long long)mla.v_head);
    r += buf;
  }
  return r;
}

}  // namespace frugal
