// Scalar row kernels for the non-matmul ops, shared by RefBackend (serial) and CpuBackend (the same
// code run in parallel over rows/heads, so both give bit-identical results). Semantics follow ggml's
// CPU ops exactly (reference §3.0): RMSNorm sums squares in double, RoPE builds theta by repeated f32
// multiplication, softmax sums in double.
#pragma once

#include <cstdint>

#include "backend/backend.h"

namespace frugal::ops {

// y = x / sqrt(mean(x^2) + eps) * w  (w may be null). x and y may alias.
void rms_norm_row(const float* x, const float* w, int64_t D, float eps, float* y);

// cos/sin cache for one position: cs[2*i], cs[2*i+1] for pair i in [0, n_dims/2).
void rope_cache(int32_t pos, const RopeParams& p, float* cs);
// Rotates one head x[Dh] with a cache from rope_cache.
void rope_head(float* x, const float* cs, const RopeParams& p);

// One query head against kv rows [0, n_visible): out[Dh_v] = softmax(q·K^T * scale) · V.
// kv head `g` selects the column block of K/V rows. scratch holds n_visible floats.
void attention_head(const float* q, const KvView& kv, int64_t g, int64_t n_visible, const AttentionShape& s,
                    float* scratch, float* out);

void silu_mul(float* g, const float* u, int64_t n);

}  // namespace frugal::ops
