// Importance-weighted legacy quantizers (what llama-quantize does for Q4_0/Q4_1/Q5_0/Q5_1 with an
// imatrix): per-element weights qw[j] * sqrt(sigma2 + x[j]^2) with sigma2 = mean(x^2) over the whole row;
// symmetric types fit the scale with fit_symmetric (make_qx_quants, rmse_type 1), the min/scale types with
// fit_scale_min (make_qkx3_quants: grid -0.9 + 0.05 * k, k = 0..36). The dispatch over types is
// quantize_row_weights_imatrix (quant_table.cpp).
#include <cmath>
#include <cstring>

#include "backend/quant.h"
#include "backend/quant_blocks.h"
#include "backend/quant_ref.h"
#include "base/half.h"

namespace frugal::qref {

namespace {

float row_sigma2(const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i] * x[i];
  return n > 0 ? s / (float)n : 0.f;
}

void block_weights(const float* x, const float* qw, float sigma2, float* w) {
  for (int j = 0; j < kQK; ++j) w[j] = qw[j] * std::sqrt(sigma2 + x[j] * x[j]);
}

inline void put_u32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }

// Symmetric: codes in [0, 2 * nmax), value = d * (code - nmax).
template <typename Block, int kNmax>
void quantize_symmetric_w(const float* src, void* dst, int64_t n, const float* qw) {
  Block* b = static_cast<Block*>(dst);
  const float sigma2 = row_sigma2(src, n);
  float w[kQK];
  int8_t L[kQK];
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float* x = src + i * kQK;
    block_weights(x, qw + i * kQK, sigma2, w);
    const float d = fit_symmetric(kQK, kNmax, x, L, w);
    b[i].d = f32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = L[j], q1 = L[j + kQK / 2];
      b[i].qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= (uint32_t)((q0 >> 4) & 1) << j;
      qh |= (uint32_t)((q1 >> 4) & 1) << (j + kQK / 2);
    }
    if constexpr (kNmax == 16) put_u32(b[i].qh, qh);
  }
}

// Scale and min: value = d * code + m, codes in [0, nmax].
template <typename Block, int kNmax>
void quantize_min_w(const float* src, void* dst, int64_t n, const float* qw) {
  Block* b = static_cast<Block*>(dst);
  const float sigma2 = row_sigma2(src, n);
  float w[kQK], neg_min = 0;
  uint8_t L[kQK], Laux[kQK];
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float* x = src + i * kQK;
    block_weights(x, qw + i * kQK, sigma2, w);
    const float d = fit_scale_min(kQK, kNmax, x, w, L, &neg_min, Laux, -0.9f, 0.05f, 36);
    b[i].d = f32_to_fp16(d);
    b[i].m = f32_to_fp16(-neg_min);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = L[j], q1 = L[j + kQK / 2];
      b[i].qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= (uint32_t)((q0 >> 4) & 1) << j;
      qh |= (uint32_t)((q1 >> 4) & 1) << (j + kQK / 2);
    }
    if constexpr (kNmax == 31) put_u32(b[i].qh, qh);
  }
}

}  // namespace

void quantize_q4_0_w(const float* src, void* dst, int64_t n, const float* qw) {
  if (!qw) return from_float_q4_0(src, dst, n);
  quantize_symmetric_w<BlockQ4_0, 8>(src, dst, n, qw);
}
void quantize_q5_0_w(const float* src, void* dst, int64_t n, const float* qw) {
  if (!qw) return from_float_q5_0(src, dst, n);
  quantize_symmetric_w<BlockQ5_0, 16>(src, dst, n, qw);
}
void quantize_q4_1_w(const float* src, void* dst, int64_t n, const float* qw) {
  if (!qw) return from_float_q4_1(src, dst, n);
  quantize_min_w<BlockQ4_1, 15>(src, dst, n, qw);
}
void quantize_q5_1_w(const float* src, void* dst, int64_t n, const float* qw) {
  if (!qw) return from_float_q5_1(src, dst, n);
  quantize_min_w<BlockQ5_1, 31>(src, dst, n, qw);
}

}  // namespace frugal::qref

namespace frugal {

bool quantize_uses_importance(DType type) {
  switch (type) {
    case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1:
    case DType::Q4_K: case DType::Q5_K: case DType::Q6_K:
      return true;
    default:
      return false;
  }
}

void quantize_row_weights_imatrix(DType type, const float* src, void* dst, int64_t n, const float* importance) {
  if (!importance || !quantize_uses_importance(type)) return quantize_row_weights(type, src, dst, n);
  switch (type) {
    case DType::Q4_0: return qref::quantize_q4_0_w(src, dst, n, importance);
    case DType::Q4_1: return qref::quantize_q4_1_w(src, dst, n, importance);
    case DType::Q5_0: return qref::quantize_q5_0_w(src, dst, n, importance);
    case DType::Q5_1: return qref::quantize_q5_1_w(src, dst, n, importance);
    case DType::Q4_K: return qref::quantize_q4_K_w(src, dst, n, importance);
    case DType::Q5_K: return qref::quantize_q5_K_w(src, dst, n, importance);
    case DType::Q6_K: return qref::quantize_q6_K_w(src, dst, n, importance);
    default: return quantize_row_weights(type, src, dst, n);
  }
}

}  // namespace frugal
