// `qwen2` architecture: Qwen2 and DeepSeek-R1-Distill-Qwen (§3.2). The llama forward pass with two
// differences: RoPE in NEOX layout (halves rotated, weights not permuted by the converter) and required
// q/k/v biases. Output may be tied to token_embd.
#include "model/architectures.h"

namespace frugal {

StatusOr<std::unique_ptr<Model>> load_qwen2(std::unique_ptr<GgufFile> file) {
  FRUGAL_ASSIGN_OR_RETURN(ModelConfig c, read_llama_like_config(*file, RopeMode::kNeox));
  return build_llama_family(std::move(file), std::move(c), LlamaVariant{/*qkv_bias_required=*/true});
}

}  // namespace frugal
