// `llama` architecture: LLaMA 1/2/3, DeepSeek-LLM 7B/67B, DeepSeek-Coder v1, R1-Distill-Llama (§3.1).
//   x = embd(tokens)
//   per layer: x += Wo·Attn(RoPE_norm(Wq a), RoPE_norm(Wk a), Wv a)   with a = RMSNorm(x)·attn_norm
//              x += down(silu(gate f)·up f)                          with f = RMSNorm(x)·ffn_norm
//   logits = output · RMSNorm(x)·output_norm     (output tied to token_embd when absent)
#include "model/architectures.h"

#include <algorithm>

#include "model/layers.h"

namespace frugal {

namespace {

struct LlamaLayer {
  const float* attn_norm = nullptr;
  AttentionWeights attn;
  const float* ffn_norm = nullptr;
  FfnWeights ffn;
};

struct LlamaWeights {
  WeightView token_embd;
  std::vector<LlamaLayer> layers;
  const float* output_norm = nullptr;
  WeightView output;
  const float* rope_freqs = nullptr;
};

class LlamaModel final : public Model {
 public:
  explicit LlamaModel(LlamaVariant variant) : variant_(variant) {}

  Status init(std::unique_ptr<GgufFile> file, ModelConfig config) {
    file_ = std::move(file);
    config_ = std::move(config);
    const ModelConfig& c = config_;
    WeightLoader L(*file_);
    FRUGAL_ASSIGN_OR_RETURN(w_.token_embd, L.matrix("token_embd.weight", c.n_embd, c.n_vocab));
    FRUGAL_ASSIGN_OR_RETURN(w_.output_norm, L.vector("output_norm.weight", c.n_embd));
    FRUGAL_ASSIGN_OR_RETURN(w_.output, L.matrix("output.weight", c.n_embd, c.n_vocab, /*optional=*/true));
    if (!w_.output.data) w_.output = w_.token_embd;  // tied embeddings
    FRUGAL_ASSIGN_OR_RETURN(w_.rope_freqs, L.vector("rope_freqs.weight", c.rope.n_dims / 2, /*optional=*/true));
    config_.rope.freq_factors = w_.rope_freqs;
    w_.layers.resize((size_t)c.n_layer);
    for (int64_t l = 0; l < c.n_layer; ++l) {
      LlamaLayer& ly = w_.layers[(size_t)l];
      const std::string p = "blk." + std::to_string(l) + ".";
      FRUGAL_ASSIGN_OR_RETURN(ly.attn_norm, L.vector(p + "attn_norm.weight", c.n_embd));
      FRUGAL_ASSIGN_OR_RETURN(ly.ffn_norm, L.vector(p + "ffn_norm.weight", c.n_embd));
      FRUGAL_RETURN_IF_ERROR(load_attention(L, c, l, /*biases_required=*/variant_.qkv_bias_required, &ly.attn));
      FRUGAL_RETURN_IF_ERROR(load_ffn(L, c, l, c.n_ff, &ly.ffn));
    }
    bytes_ = L.bytes_used();
    params_ = L.params_used();
    return Status::Ok();
  }

  Status forward_batch(Backend& be, KvCache& kv, const Batch& b, float* logits) override {
    const ModelConfig& c = config_;
    FRUGAL_RETURN_IF_ERROR(check_batch(c, kv, b));
    ws_.reserve(c, b.T);
    float* x = ws_.x.data();
    float* a = ws_.a.data();
    be.get_rows(w_.token_embd, b.tokens, b.T, x);
    for (int64_t l = 0; l < c.n_layer; ++l) {
      const LlamaLayer& ly = w_.layers[(size_t)l];
      be.rms_norm(x, ly.attn_norm, b.T, c.n_embd, c.rms_eps, a);
      attention_block(be, c, ly.attn, kv, l, b, ws_, a, x);
      be.rms_norm(x, ly.ffn_norm, b.T, c.n_embd, c.rms_eps, a);
      ffn_block(be, c, ly.ffn, b.T, ws_, a, x);
    }
    if (b.n_logits > 0) output_head(be, c, w_.output_norm, w_.output, b, ws_, x, logits);
    return Status::Ok();
  }

  uint64_t weight_bytes() const override { return bytes_; }
  uint64_t n_params() const override { return params_; }

 private:
  LlamaVariant variant_;
  LlamaWeights w_;
  Workspace ws_;
  uint64_t bytes_ = 0, params_ = 0;
};

}  // namespace

StatusOr<std::unique_ptr<Model>> load_llama(std::unique_ptr<GgufFile> file) {
  FRUGAL_ASSIGN_OR_RETURN(ModelConfig c, read_llama_like_config(*file, RopeMode::kNorm));
  if (c.rope.n_dims != c.head_dim_k)
    return corrupt(file->path() + ": llama.rope.dimension_count " + std::to_string(c.rope.n_dims) +
                   " must equal the head dimension " + std::to_string(c.head_dim_k));
  return build_llama_family(std::move(file), std::move(c), LlamaVariant{});
}

StatusOr<std::unique_ptr<Model>> build_llama_family(std::unique_ptr<GgufFile> file, ModelConfig config,
                                                    LlamaVariant variant) {
  auto m = std::make_unique<LlamaModel>(variant);
  FRUGAL_RETURN_IF_ERROR(m->init(std::move(file), std::move(config)));
  return std::unique_ptr<Model>(std::move(m));
}

}  // namespace frugal
