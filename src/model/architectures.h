// Loaders for each architecture (one file each); Model::load dispatches on general.architecture.
#pragma once

#include <memory>

#include "model/model.h"

namespace frugal {

StatusOr<std::unique_ptr<Model>> load_llama(std::unique_ptr<GgufFile> file);
StatusOr<std::unique_ptr<Model>> load_qwen2(std::unique_ptr<GgufFile> file);
StatusOr<std::unique_ptr<Model>> load_deepseek(std::unique_ptr<GgufFile> file);
StatusOr<std::unique_ptr<Model>> load_deepseek2(std::unique_ptr<GgufFile> file);

// The llama forward pass is shared by architectures that differ only in config and bias rules (qwen2).
struct LlamaVariant {
  bool qkv_bias_required = false;
};
StatusOr<std::unique_ptr<Model>> build_llama_family(std::unique_ptr<GgufFile> file, ModelConfig config,
                                                    LlamaVariant variant);

}  // namespace frugal
