// Scalar reference for IQ4_NL (32-element blocks, 4-bit indices into the fixed codebook kIQ4NLValues,
// reference §2.2): dequantization, the weight quantizer and the dot product with Q8_0 activations.
// See quant_ref.h for the contract. Built for baseline x86-64 (no FMA), like the other quant_ref files.
//
// Quantizer (the scheme of ggml's quantize_row_iq4_nl_ref, no importance matrix), per block:
//  * importance w_j = x_j^2, so large-magnitude elements, which dominate dot products, are fit best;
//  * a block whose largest |x| is below 1e-15 stores d = 0 (and codes 8, the value nearest 0);
//  * candidate scales: d = max/127 (max = the signed element of largest magnitude), and the 15 scales
//    that map max onto -127 + t for t = -7..7 (i.e. inverse scale (t - 127) / max, which uses the
//    codebook's longer negative end for the largest element);
//  * for each candidate, every element takes the nearest codebook value of x_j / d (ties to the upper
//    value), and the weighted least-squares scale for those codes is d* = sum w q x / sum w q^2;
//    the candidate maximizing (sum w q x)^2 / sum w q^2 (= the reduction of sum w (x - d* q)^2) wins,
//    ties keeping the earlier one;
//  * the block stores fp16(d*) and is re-coded once more against the unrounded d* (nearest value;
//    against 0 when d* = 0).
#include <cmath>

#include "backend/quant_blocks.h"
#include "backend/quant_ref.h"
#include "base/half.h"

namespace frugal::qref {

namespace {

constexpr int kCodes = 16;
constexpr int kSearch = 7;            // candidate offsets -kSearch .. kSearch
constexpr float kZeroBlockMax = 1e-15f;

// Index of the codebook value nearest to v; ties (and values beyond the ends) as ggml's
// best_index_int8: the upper neighbour on an exact tie.
inline int nearest_code(float v) {
  if (v <= kIQ4NLValues[0]) return 0;
  if (v >= kIQ4NLValues[kCodes - 1]) return kCodes - 1;
  int lo = 0;
  while (lo + 1 < kCodes - 1 && kIQ4NLValues[lo + 1] <= v) ++lo;
  const int hi = lo + 1;
  return v - kIQ4NLValues[lo] < kIQ4NLValues[hi] - v ? lo : hi;
}

// Codes for inverse scale id; returns sum w q x and sum w q^2 in *qx, *q2.
inline void code_block(const float* x, const float* w, float id, uint8_t* codes, float* qx, float* q2) {
  float sqx = 0.f, sq2 = 0.f;
  for (int j = 0; j < kQK; ++j) {
    const int l = nearest_code(id * x[j]);
    if (codes) codes[j] = (uint8_t)l;
    const float q = kIQ4NLValues[l];
    sqx += w[j] * q * x[j];
    sq2 += w[j] * q * q;
  }
  *qx = sqx;
  *q2 = sq2;
}

// The block's scale by the search described at the top of the file.
float choose_scale(const float* x) {
  float w[kQK];
  float amax = 0.f, max = 0.f;
  for (int j = 0; j < kQK; ++j) {
    w[j] = x[j] * x[j];
    const float a = std::fabs(x[j]);
    if (a > amax) {
      amax = a;
      max = x[j];
    }
  }
  if (amax < kZeroBlockMax) return 0.f;
  float qx, q2;
  code_block(x, w, 1.f / (-max / kIQ4NLValues[0]), nullptr, &qx, &q2);
  float d = qx / q2;
  float best = d * qx;
  for (int t = -kSearch; t <= kSearch; ++t) {
    code_block(x, w, (float)(t + kIQ4NLValues[0]) / max, nullptr, &qx, &q2);
    if (q2 > 0 && qx * qx > best * q2) {
      d = qx / q2;
      best = d * qx;
    }
  }
  return d;
}

}  // namespace

void to_float_iq4_nl(const void* src, float* dst, int64_t n) {
  const BlockIQ4_NL* b = static_cast<const BlockIQ4_NL*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, dst += kQK) {
    const float d = fp16_to_f32(b[i].d);
    for (int j = 0; j < kQK / 2; ++j) {
      dst[j] = d * kIQ4NLValues[b[i].qs[j] & 0x0F];
      dst[j + kQK / 2] = d * kIQ4NLValues[b[i].qs[j] >> 4];
    }
  }
}

void from_float_iq4_nl(const float* src, void* dst, int64_t n) {
  BlockIQ4_NL* b = static_cast<BlockIQ4_NL*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, src += kQK) {
    const float d = choose_scale(src);
    b[i].d = f32_to_fp16(d);
    const float id = d != 0.f ? 1.f / d : 0.f;
    uint8_t codes[kQK];
    for (int j = 0; j < kQK; ++j) codes[j] = (uint8_t)nearest_code(id * src[j]);
    for (int j = 0; j < kQK / 2; ++j) b[i].qs[j] = (uint8_t)(codes[j] | (codes[j + kQK / 2] << 4));
  }
}

void vec_dot_iq4_nl_q8_0(int64_t n, float* s, const void* x, const void* y) {
  const BlockIQ4_NL* a = static_cast<const BlockIQ4_NL*>(x);
  const BlockQ8_0* b = static_cast<const BlockQ8_0*>(y);
  float sum = 0.f;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int s0 = 0, s1 = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      s0 += kIQ4NLValues[a[i].qs[j] & 0x0F] * b[i].qs[j];
      s1 += kIQ4NLValues[a[i].qs[j] >> 4] * b[i].qs[j + kQK / 2];
    }
    sum += (fp16_to_f32(a[i].d) * fp16_to_f32(b[i].d)) * (float)(s0 + s1);
  }
  *s = sum;
}

}  // namespace frugal::qref
