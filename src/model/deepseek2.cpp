// `deepseek2` architecture: DeepSeek-V2, V2-Lite, Coder-V2, V2.5, V3, R1 (reference §3.4).
//   per layer: x += MLA(a)                            a = RMSNorm(x)·attn_norm      (model/mla.h, absorbed)
//              x += dense FFN(f) or MoE(f)            f = RMSNorm(x)·ffn_norm       (model/moe.h)
//   logits = output · RMSNorm(x)·output_norm
// The KV cache holds per token and layer only [c_kv | k_pe] (kv_lora_rank + qk_rope values): the config
// says n_head_kv 1, head_dim_k kv_lora_rank + qk_rope, head_dim_v 0 (KvCache's MLA latent mode).
#include <cmath>
#include <memory>

#include "model/architectures.h"
#include "model/layers.h"
#include "model/mla.h"
#include "model/moe.h"

namespace frugal {

namespace {

struct Deepseek2Layer {
  const float* attn_norm = nullptr;
  MlaWeights attn;
  const float* ffn_norm = nullptr;
  FfnWeights ffn;       // dense layers
  MoeLayerWeights moe;  // MoE layers
};

class Deepseek2Model final : public Model {
 public:
  Status init(std::unique_ptr<GgufFile> file, ModelConfig config) {
    file_ = std::move(file);
    config_ = std::move(config);
    const ModelConfig& c = config_;
    WeightLoader L(*file_);
    FRUGAL_ASSIGN_OR_RETURN(token_embd_, L.matrix("token_embd.weight", c.n_embd, c.n_vocab));
    FRUGAL_ASSIGN_OR_RETURN(output_norm_, L.vector("output_norm.weight", c.n_embd));
    FRUGAL_ASSIGN_OR_RETURN(output_, L.matrix("output.weight", c.n_embd, c.n_vocab, /*optional=*/true));
    if (!output_.data) output_ = token_embd_;
    stats_ = std::make_unique<MoeStats>(c.n_layer, c.moe.n_expert);
    layers_.resize((size_t)c.n_layer);
    for (int64_t l = 0; l < c.n_layer; ++l) {
      Deepseek2Layer& ly = layers_[(size_t)l];
      const std::string p = "blk." + std::to_string(l) + ".";
      FRUGAL_ASSIGN_OR_RETURN(ly.attn_norm, L.vector(p + "attn_norm.weight", c.n_embd));
      FRUGAL_ASSIGN_OR_RETURN(ly.ffn_norm, L.vector(p + "ffn_norm.weight", c.n_embd));
      FRUGAL_RETURN_IF_ERROR(load_mla(L, *file_, c, l, &ly.attn));
      if (l < c.moe.n_layer_dense_lead) {
        FRUGAL_RETURN_IF_ERROR(load_ffn(L, c, l, c.n_ff, &ly.ffn));
      } else {
        FRUGAL_RETURN_IF_ERROR(load_moe_layer(L, c, l, &ly.moe));
        set_moe_layer_size(*stats_, c, l, ly.moe);
      }
    }
    bytes_ = L.bytes_used() - moe_unread_bytes(*stats_, c.moe);
    params_ = L.params_used();
    return Status::Ok();
  }

  Status forward_batch(Backend& be, KvCache& kv, const Batch& b, float* logits) override {
    const ModelConfig& c = config_;
    FRUGAL_RETURN_IF_ERROR(check_batch(c, kv, b));
    ws_.reserve(c, b.T);
    float* x = ws_.x.data();
    float* a = ws_.a.data();
    be.get_rows(token_embd_, b.tokens, b.T, x);
    for (int64_t l = 0; l < c.n_layer; ++l) {
      const Deepseek2Layer& ly = layers_[(size_t)l];
      be.rms_norm(x, ly.attn_norm, b.T, c.n_embd, c.rms_eps, a);
      mla_attention(be, c, ly.attn, kv, l, b, mla_ws_, a, x);
      be.rms_norm(x, ly.ffn_norm, b.T, c.n_embd, c.rms_eps, a);
      if (l < c.moe.n_layer_dense_lead) {
        ffn_block(be, c, ly.ffn, b.T, ws_, a, x);
      } else {
        moe_ffn(be, c, ly.moe, l, b.T, a, x, moe_ws_, stats_.get());
      }
    }
    if (b.n_logits > 0) output_head(be, c, output_norm_, output_, b, ws_, x, logits);
    return Status::Ok();
  }

  uint64_t weight_bytes() const override { return bytes_; }
  uint64_t n_params() const override { return params_; }
  const MoeStats* moe_stats() const override { return stats_.get(); }

 private:
  WeightView token_embd_, output_;
  const float* output_norm_ = nullptr;
  std::vector<Deepseek2Layer> layers_;
  std::unique_ptr<MoeStats> stats_;
  Workspace ws_;
  MlaWorkspace mla_ws_;
  MoeWorkspace moe_ws_;
  uint64_t bytes_ = 0, params_ = 0;
};

// MLA shapes, YaRN and the score scale (reference §3.4.1, §3.4.5), on top of the llama-like keys.
Status read_deepseek2_config(const GgufFile& f, ModelConfig* cp) {
  ModelConfig& c = *cp;
  MlaConfig& m = c.mla;
  const std::string a = "deepseek2.";
  FRUGAL_ASSIGN_OR_RETURN(m.kv_lora_rank, f.get_int(a + "attention.kv_lora_rank"));
  FRUGAL_ASSIGN_OR_RETURN(int64_t k_mla, f.get_int(a + "attention.key_length_mla", 0));
  FRUGAL_ASSIGN_OR_RETURN(int64_t v_mla, f.get_int(a + "attention.value_length_mla", 0));
  const int64_t head_k = k_mla > 0 ? k_mla : c.head_dim_k;
  m.v_head = v_mla > 0 ? v_mla : c.head_dim_v;
  m.qk_rope = c.rope.n_dims;
  m.qk_nope = head_k - m.qk_rope;
  if (m.kv_lora_rank <= 0 || m.kv_lora_rank > (1 << 16) || m.qk_nope <= 0 || m.v_head <= 0)
    return corrupt(f.path() + ": MLA shapes invalid: kv_lora_rank " + std::to_string(m.kv_lora_rank) + ", q/k head " +
                   std::to_string(head_k) + " with rope " + std::to_string(m.qk_rope) + ", v head " +
                   std::to_string(m.v_head));
  FRUGAL_ASSIGN_OR_RETURN(m.q_lora_rank, f.get_int(a + "attention.q_lora_rank", 0));
  if (const GgufTensorInfo* qa = f.tensor("blk.0.attn_q_a.weight")) {
    if (m.q_lora_rank <= 0) m.q_lora_rank = qa->ne[1];
  } else {
    m.q_lora_rank = 0;  // plain attn_q (V2-Lite); llama.cpp guesses this from block_count instead
  }
  // YaRN (§3.4.5): RoPE magnitude exactly 1, the attention scaling goes into kq_scale.
  const float F = 1.f / c.rope.freq_scale;
  FRUGAL_ASSIGN_OR_RETURN(double log_mul, f.get_float(a + "rope.scaling.yarn_log_multiplier", 0.0));
  FRUGAL_ASSIGN_OR_RETURN(double attn_factor, f.get_float(a + "rope.scaling.attn_factor", 1.0));
  FRUGAL_ASSIGN_OR_RETURN(double beta_fast, f.get_float(a + "rope.scaling.yarn_beta_fast", 32.0));
  FRUGAL_ASSIGN_OR_RETURN(double beta_slow, f.get_float(a + "rope.scaling.yarn_beta_slow", 1.0));
  c.rope.beta_fast = (float)beta_fast;
  c.rope.beta_slow = (float)beta_slow;
  c.rope.attn_factor = 1.f / (1.f + 0.1f * std::log(F));
  const float mscale = (float)attn_factor * (1.f + (float)log_mul * std::log(F));
  c.kq_scale = mscale * mscale / std::sqrt((float)head_k);
  // latent cache rows [c_kv | k_pe]
  c.n_head_kv = 1;
  c.head_dim_k = m.kv_lora_rank + m.qk_rope;
  c.head_dim_v = 0;
  return Status::Ok();
}

}  // namespace

StatusOr<std::unique_ptr<Model>> load_deepseek2(std::unique_ptr<GgufFile> file) {
  FRUGAL_ASSIGN_OR_RETURN(ModelConfig c, read_llama_like_config(*file, RopeMode::kNorm));
  FRUGAL_RETURN_IF_ERROR(read_deepseek2_config(*file, &c));
  FRUGAL_RETURN_IF_ERROR(read_moe_config(*file, /*gating_keys=*/true, &c));
  auto m = std::make_unique<Deepseek2Model>();
  FRUGAL_RETURN_IF_ERROR(m->init(std::move(file), std::move(c)));
  return std::unique_ptr<Model>(std::move(m));
}

}  // namespace frugal
