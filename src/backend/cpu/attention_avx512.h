// AVX-512 flash-style attention (online softmax) over a KvView (contiguous or paged, F32/F16/Q8_0).
//
// One call handles a tile of queries that share one KV head g (the query heads of a GQA group and/or
// consecutive tokens of one sequence), so every K/V row is converted to f32 once per tile and used by all
// its queries. Keys are processed in blocks of kv_block(s) positions starting at absolute position 0
// ([0, B), [B, 2B), ...); per query and block: scores (16 keys per vector), running max/sum update,
// rescale of the output accumulator, then p·V. A query's arithmetic depends only on its q, its own
// n_visible and the shape -- never on the other queries of the tile, the tile size, or the thread -- so a
// token's result is the same alone or in any batch (bit-exact).
//
// Differs from ops::attention_head (the scalar oracle) only in summation order and in exp() (a degree-7
// polynomial, ~1 ulp): results agree to ~1e-6 relative.
// Call only when isa_supported(Isa::kAvx512). Thread-safety: scratch is per caller thread.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"

namespace frugal::ops {

struct FlashQuery {
  const float* q = nullptr;  // [Dh_k]
  float* out = nullptr;      // [Dh_v]
  int64_t n_visible = 0;     // keys [0, n_visible) are visible; >= 1
};

// Per-thread working memory (grown on demand, reused between calls).
struct FlashScratch {
  std::vector<float> buf;
};

// Key block length for a shape (a multiple of 16; fixed by head dims only).
int64_t flash_kv_block(const AttentionShape& s);

// out = softmax(q·K^T * s.scale) · V for each of the nq queries over KV head g of kv.
void attention_flash_avx512(const FlashQuery* qs, int64_t nq, const KvView& kv, int64_t g, const AttentionShape& s,
                            FlashScratch* scratch);
// The same with 8-lane AVX2/FMA/F16C vectors (cpu/attention_flash_avx2.cpp; exp clamped at e^-87); call only
// when isa_supported(Isa::kAvx2). Its results differ from the AVX-512 kernel's in summation order.
void attention_flash_avx2(const FlashQuery* qs, int64_t nq, const KvView& kv, int64_t g, const AttentionShape& s,
                          FlashScratch* scratch);

}  // namespace frugal::ops
