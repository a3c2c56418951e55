// KvCache: keys and values of one sequence, per layer, in F32 or F16.
//
//   layer l:  K [n_ctx, n_head_kv * head_dim_k]   row r = position r
//             V [n_ctx, n_head_kv * head_dim_v]
//
// This is the single-sequence cache of the engine core. The paged multi-sequence cache (block pool,
// prefix reuse) replaces the storage later; model code only uses store()/view()/n_past(), which keep
// their meaning there (view() then gathers a sequence's blocks).
// Thread-safety: owned by the engine thread.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "tensor/dtype.h"

namespace frugal {

struct ModelConfig;

class KvCache {
 public:
  // type: DType::F32 (exact; used by golden tests) or DType::F16 (half the memory, llama.cpp's default).
  KvCache(const ModelConfig& config, int64_t n_ctx, DType type = DType::F16);

  int64_t n_ctx() const { return n_ctx_; }
  int64_t n_past() const { return n_past_; }
  DType type() const { return type_; }
  void clear() { n_past_ = 0; }
  // Forget positions >= n (n <= n_past()).
  void truncate(int64_t n);
  // Marks positions [0, n) valid (the model calls this after a forward).
  void set_n_past(int64_t n);

  // Stores T rows of keys/values (f32, row strides in floats) at positions pos[t] of layer `layer`.
  void store(int64_t layer, const int32_t* pos, int64_t T, const float* k, int64_t k_stride, const float* v,
             int64_t v_stride);
  // The first n_kv rows of layer `layer`.
  KvView view(int64_t layer, int64_t n_kv) const;

  size_t bytes() const { return k_.size() + v_.size(); }
  size_t bytes_per_token() const;

 private:
  int64_t n_layer_, n_ctx_, k_width_, v_width_;
  DType type_;
  size_t k_row_bytes_, v_row_bytes_;
  int64_t n_past_ = 0;
  std::vector<uint8_t> k_, v_;  // [n_layer][n_ctx][width]
};

}  // namespace frugal
