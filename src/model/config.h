// ModelConfig: hyper-parameters read from GGUF metadata ({arch}.* keys), validated once at load.
#pragma once

#include <cstdint>
#include <string>

#include "backend/backend.h"
#include "base/status.h"
#include "gguf/gguf_file.h"

namespace frugal {

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
  int64_t head_dim_v = 0;  // Dh of v
  int64_t n_ff = 0;        // F
  float rms_eps = 1e-5f;
  float kq_scale = 0.f;    // 1/sqrt(head_dim_k) unless {arch}.attention.scale
  RopeParams rope;         // mode, n_dims, base, scaling

  int64_t n_embd_k_gqa() const { return n_head_kv * head_dim_k; }
  int64_t n_embd_v_gqa() const { return n_head_kv * head_dim_v; }
  std::string summary() const;  // one line for logs
};

// Reads the keys common to the llama-like architectures (llama, qwen2, deepseek). `rope_mode` is the
// architecture's RoPE layout. Errors name the file and the key.
StatusOr<ModelConfig> read_llama_like_config(const GgufFile& f, RopeMode rope_mode);

}  // namespace frugal
