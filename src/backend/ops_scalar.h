// Scalar row kernels for the non-matmul ops, shared by RefBackend (serial) and CpuBackend (the same
// code run in parallel over rows/heads, so both give bit-identical results). Semantics follow ggml's
// CPU ops (reference §3.0): RMSNorm sums squares in double, RoPE builds theta by repeated f32
// multiplication, softmax sums in double. RMSNorm and SiLU also have SIMD twins (cpu/elementwise_*.cpp)
// that follow the arithmetic spelled out here step by step, so they give the same bits too: the sum of
// squares in 16 interleaved double lanes added as a tree, and e^x by one fixed polynomial.
#pragma once

#include <cstdint>

#include "backend/backend.h"

namespace frugal::ops {

// y = x / sqrt(mean(x^2) + eps) * w  (w may be null). x and y may alias.
// Sum of squares: lane i % 16 accumulates x_i^2 in double (exact products, elements in order), then
// lanes[j] += lanes[j + k] for k = 8, 4, 2, 1. y_i = (x_i * scale) * w_i in float.
void rms_norm_row(const float* x, const float* w, int64_t D, float eps, float* y);
constexpr int kSumLanes = 16;
// Adds x_i^2 for i in [i0, D) to lanes[i % 16], then the tree; returns the sum (lanes are clobbered).
double sum_squares_finish(double* lanes, const float* x, int64_t i0, int64_t D);
// 1 / sqrt(float(sum_sq / D) + eps).
float rms_scale(double sum_sq, int64_t D, float eps);

// cos/sin cache for one position: cs[2*i], cs[2*i+1] for pair i in [0, n_dims/2).
void rope_cache(int32_t pos, const RopeParams& p, float* cs);
// Rotates one head x[Dh] with a cache from rope_cache.
void rope_head(float* x, const float* cs, const RopeParams& p);

// One query head against kv rows [0, n_visible): out[Dh_v] = softmax(q·K^T * scale) · V.
// kv head `g` selects the column block of K/V rows. scratch holds n_visible floats.
void attention_head(const float* q, const KvView& kv, int64_t g, int64_t n_visible, const AttentionShape& s,
                    float* scratch, float* out);

// SiLU: x / (1 + e^-x), with e^a for a = -x clamped to [-87, 88] (so 2^n stays a normal float):
// n = nearbyint(a * log2 e), r = a - n ln2 (two FMAs, ln2 split hi/lo), p = degree-7 Taylor polynomial
// of e^r by Horner FMAs (|r| <= ln2/2: relative error < 1e-8), then x / fma(p, 2^n, 1), the
// denominator +inf where -x > 88 (x e^x is below 1e-36 there: the result is -0). Within a few ulp of
// x / (1 + exp(-x)) elsewhere; NaN and -inf give NaN as that formula does.
float silu(float x);
inline constexpr float kExpMin = -87.f, kExpMax = 88.f, kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f,
                       kLn2Lo = -2.12194440e-4f;
inline constexpr float kExpC[8] = {1.f / 5040.f, 1.f / 720.f, 1.f / 120.f, 1.f / 24.f, 1.f / 6.f, 0.5f, 1.f, 1.f};
// g_i = silu(g_i) * u_i.
void silu_mul(float* g, const float* u, int64_t n);

}  // namespace frugal::ops
