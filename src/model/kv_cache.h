// KvCache: KV storage rows per layer, in F32 or F16.
//
//   layer l:  K [n_rows, n_head_kv * head_dim_k]
//             V [n_rows, n_head_kv * head_dim_v]
//
// MLA latent mode (config head_dim_v == 0, deepseek2): one row per token holds [c_kv | k_pe]
// (kv_lora_rank + qk_rope values), there is no V storage and view() aliases V onto K (v == k,
// v_row_bytes == k_row_bytes), so attention reads the value c_kv as the first kv_lora_rank columns of K.
//
// Two uses: one contiguous sequence (row r = position r; n_past() tracks how many are valid; `frugal run`,
// bench, golden tests), or the engine's paged pool (rows = n_blocks * block_size slots; the engine's
// KvCacheManager decides which rows a sequence owns and passes block tables in the Batch; n_past() unused).
// Thread-safety: owned by the engine thread.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "base/huge_pages.h"
#include "base/status.h"
#include "tensor/dtype.h"

namespace frugal {

struct ModelConfig;

class KvCache {
 public:
  // type: DType::F32 (exact; used by golden tests), DType::F16 (half the memory, llama.cpp's default) or
  // DType::Q8_0 (blocks of 32 with an f16 scale, ~53% of F16; needs supports()).
  KvCache(const ModelConfig& config, int64_t n_ctx, DType type = DType::F16);

  // Whether `type` can hold this model's K/V (Q8_0 needs K and V head dims that are multiples of 32); the
  // message says why not.
  static Status supports(const ModelConfig& config, DType type);
  // Bytes one token takes over all layers in `type` (what bytes_per_token() of such a cache returns).
  static size_t bytes_per_token(const ModelConfig& config, DType type);

  int64_t n_ctx() const { return n_ctx_; }
  int64_t n_past() const { return n_past_; }
  DType type() const { return type_; }
  void clear() { n_past_ = 0; }
  // Forget positions >= n (n <= n_past()).
  void truncate(int64_t n);
  // Marks positions [0, n) valid (the model calls this after a forward).
  void set_n_past(int64_t n);

  // Stores T rows of keys/values (f32, row strides in floats) at storage rows rows[t] of layer `layer`.
  // In MLA latent mode v is ignored (may be null).
  void store(int64_t layer, const int32_t* rows, int64_t T, const float* k, int64_t k_stride, const float* v,
             int64_t v_stride);
  // The storage rows of layer `layer` for Backend::rope_kv_write (the fused form of rope + store()).
  KvWriteTarget write_target(int64_t layer);
  // Positions [0, n_kv) of layer `layer`: rows 0..n_kv-1, or through a block table (see KvView).
  KvView view(int64_t layer, int64_t n_kv, const int32_t* block_table = nullptr, int block_shift = 0) const;

  size_t bytes() const { return k_.size() + v_.size(); }
  // Whether the storage was advised MADV_HUGEPAGE (it is 2 MiB aligned, zero-filled lazily by the kernel).
  bool huge_pages() const { return k_.huge_advised(); }
  // K plus V bytes of one token over all layers (MLA: n_layer * (kv_lora_rank + qk_rope) * element size).
  size_t bytes_per_token() const;

 private:
  int64_t n_layer_, n_ctx_, k_width_, v_width_;
  DType type_;
  size_t k_row_bytes_, v_row_bytes_;
  int64_t n_past_ = 0;
  HugeBuffer k_, v_;  // [n_layer][n_ctx][width]; anonymous 2 MiB-aligned memory, MADV_HUGEPAGE
};

}  // namespace frugal
