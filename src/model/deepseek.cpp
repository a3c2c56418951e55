// `deepseek` architecture: DeepSeekMoE 16B (reference §3.3). llama attention (MHA/GQA, NORM rope) and a
// DeepSeekMoE FFN: layers [0, leading_dense_block_count) dense, the rest fine-grained routed experts
// (softmax gate, top-k, weights neither renormalized nor scaled, as llama.cpp) plus always-on shared experts.
//   per layer: x += Wo·Attn(a)                       a = RMSNorm(x)·attn_norm
//              x += dense FFN(f) or MoE(f)           f = RMSNorm(x)·ffn_norm      (model/moe.h)
//   logits = output · RMSNorm(x)·output_norm
#include <memory>

#include "model/architectures.h"
#include "model/layers.h"
#include "model/moe.h"

namespace frugal {

namespace {

struct DeepseekLayer {
  const float* attn_norm = nullptr;
  AttentionWeights attn;
  const float* ffn_norm = nullptr;
  FfnWeights ffn;       // dense layers
  MoeLayerWeights moe;  // MoE layers
};

class DeepseekModel final : public Model {
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
      DeepseekLayer& ly = layers_[(size_t)l];
      const std::string p = "blk." + std::to_string(l) + ".";
      FRUGAL_ASSIGN_OR_RETURN(ly.attn_norm, L.vector(p + "attn_norm.weight", c.n_embd));
      FRUGAL_ASSIGN_OR_RETURN(ly.ffn_norm, L.vector(p + "ffn_norm.weight", c.n_embd));
      FRUGAL_RETURN_IF_ERROR(load_attention(L, c, l, /*biases_required=*/false, &ly.attn));
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
      const DeepseekLayer& ly = layers_[(size_t)l];
      be.rms_norm(x, ly.attn_norm, b.T, c.n_embd, c.rms_eps, a);
      attention_block(be, c, ly.attn, kv, l, b, ws_, a, x);
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
  std::vector<DeepseekLayer> layers_;
  std::unique_ptr<MoeStats> stats_;
  Workspace ws_;
  MoeWorkspace moe_ws_;
  uint64_t bytes_ = 0, params_ = 0;
};

}  // namespace

StatusOr<std::unique_ptr<Model>> load_deepseek(std::unique_ptr<GgufFile> file) {
  FRUGAL_ASSIGN_OR_RETURN(ModelConfig c, read_llama_like_config(*file, RopeMode::kNorm));
  if (c.rope.n_dims != c.head_dim_k)
    return corrupt(file->path() + ": deepseek.rope.dimension_count " + std::to_string(c.rope.n_dims) +
                   " must equal the head dimension " + std::to_string(c.head_dim_k));
  FRUGAL_RETURN_IF_ERROR(read_moe_config(*file, /*gating_keys=*/false, &c));
  // llama.cpp's deepseek graph neither renormalizes nor scales the routed weights (expert_weights_scale is
  // written as 1.0 by the converter and not used).
  c.moe.weights_scale = 0.f;
  auto m = std::make_unique<DeepseekModel>();
  FRUGAL_RETURN_IF_ERROR(m->init(std::move(file), std::move(c)));
  return std::unique_ptr<Model>(std::move(m));
}

}  // namespace frugal
