// K-quant weight quantizers: the algorithm of ggml's quantize_row_q{4,5,6}_K_ref (what llama-quantize
// does without an importance matrix), reimplemented step by step in the same float operation order.
//
// Q4_K/Q5_K: per 32-element sub-block a weighted least-squares fit of (scale, min) over a small grid of
// inverse scales (fit_scale_min, ggml's make_qkx2_quants); the 8 scales and mins are then coded in 6
// bits relative to the largest, and the codes recomputed with the rounded scales.
// Q6_K: per 16-element group a symmetric fit (fit_symmetric, ggml's make_qx_quants with rmse_type 1),
// group scales coded as int8 relative to the largest-magnitude one.
#include <cmath>
#include <cstring>

#include "backend/quant_blocks.h"
#include "backend/quant_ref.h"
#include "base/half.h"

namespace frugal::qref {

namespace {

constexpr float kGroupMaxEps = 1e-15f;

inline int clampi(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

}  // namespace

// Codes L[i] in [0, nmax] and (scale, min >= 0) minimizing sum w*(scale*L + min' - x)^2 with
// min' = -min <= 0. Returns scale; *neg_min receives -min'.
float fit_scale_min(int n, int nmax, const float* x, const float* w, uint8_t* L, float* neg_min, uint8_t* Laux,
                    float rmin, float rdelta, int nstep) {
  float mn = x[0], mx = x[0];
  float sum_w = w[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < mn) mn = x[i];
    if (x[i] > mx) mx = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (mn > 0) mn = 0;
  if (mx == mn) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *neg_min = -mn;
    return 0.f;
  }
  float iscale = nmax / (mx - mn);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = (uint8_t)clampi(nearest_int(iscale * (x[i] - mn)), 0, nmax);
    const float diff = scale * L[i] + mn - x[i];
    best_error += w[i] * (diff * diff);
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * is + nmax) / (mx - mn);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clampi(nearest_int(iscale * (x[i] - mn)), 0, nmax);
      Laux[i] = (uint8_t)l;
      sum_l += w[i] * l;
      sum_l2 += w[i] * l * l;
      sum_xl += w[i] * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D <= 0) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
    if (this_min > 0) {
      this_min = 0;
      this_scale = sum_xl / sum_l2;
    }
    float cur_error = 0;
    for (int i = 0; i < n; ++i) {
      const float diff = this_scale * Laux[i] + this_min - x[i];
      cur_error += w[i] * (diff * diff);
    }
    if (cur_error < best_error) {
      std::memcpy(L, Laux, (size_t)n);
      best_error = cur_error;
      scale = this_scale;
      mn = this_min;
    }
  }
  *neg_min = -mn;
  return scale;
}

// Symmetric codes L[i] = l + nmax, l in [-nmax, nmax-1], weights qw[i] (x^2 when qw is null); returns the
// scale.
float fit_symmetric(int n, int nmax, const float* x, int8_t* L, const float* qw) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = (int8_t)(l + nmax);
    const float w = qw ? qw[i] : x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1);
      const float w = qw ? qw[i] : x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = (int8_t)(nmax + clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

float fit_positive(int n, int nmax, const float* x, uint8_t* L, const float* w) {
  float max = 0;
  for (int i = 0; i < n; ++i) max = x[i] > max ? x[i] : max;
  if (max < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  auto code = [&](float iscale, int i) { return clampi(nearest_int(iscale * x[i]), 0, nmax); };
  auto error = [&](float iscale) {
    const float scale = 1 / iscale;
    float e = 0;
    for (int i = 0; i < n; ++i) {
      const float diff = x[i] - scale * code(iscale, i);
      e += w[i] * diff * diff;
    }
    return e;
  };
  float best_iscale = nmax / max;
  float best = error(best_iscale);
  for (int is = -4; is <= 4; ++is) {
    if (is == 0) continue;
    const float iscale = (0.1f * is + nmax) / max;
    const float e = error(iscale);
    if (e < best) {
      best = e;
      best_iscale = iscale;
    }
  }
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = code(best_iscale, i);
    L[i] = (uint8_t)l;
    sumlx += w[i] * x[i] * l;
    suml2 += w[i] * l * l;
  }
  // Coordinate descent: each code in turn is set to its best value for the least-squares scale of the
  // others (x * sl2 / slx), kept when it raises sumlx^2 / suml2 (lowers the error); up to 5 sweeps.
  for (int sweep = 0; sweep < 5; ++sweep) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      float slx = sumlx - w[i] * x[i] * L[i];
      float sl2 = suml2 - w[i] * L[i] * L[i];
      if (!(slx > 0 && sl2 > 0)) continue;
      int l = nearest_int(x[i] * sl2 / slx);
      l = l < nmax ? l : nmax;
      if (l == L[i]) continue;
      slx += w[i] * x[i] * l;
      sl2 += w[i] * l * l;
      if (slx * slx * suml2 > sumlx * sumlx * sl2) {
        L[i] = (uint8_t)l;
        sumlx = slx;
        suml2 = sl2;
        ++changed;
      }
    }
    if (!changed) break;
  }
  return suml2 > 0 ? sumlx / suml2 : 0.f;
}

namespace {

// Q4_K / Q5_K 6-bit scale and min codes (ls, lm < 64) into the 12 packed bytes (reference §2: scales 0-3
// and mins 0-3 in the low 6 bits of bytes 0-7, 4-7 split over bytes 8-11 and the top bits of 0-7).
void pack_k_scales(const uint8_t Ls[8], const uint8_t Lm[8], uint8_t packed[kKScaleBytes]) {
  std::memset(packed, 0, kKScaleBytes);
  for (int j = 0; j < 8; ++j) {
    const uint8_t ls = Ls[j], lm = Lm[j];
    if (j < 4) {
      packed[j] = ls;
      packed[j + 4] = lm;
    } else {
      packed[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
      packed[j - 4] |= (uint8_t)((ls >> 4) << 6);
      packed[j] |= (uint8_t)((lm >> 4) << 6);
    }
  }
}

// Final codes of a Q4_K / Q5_K super-block from its coded scales: L = round((x + dmin*m) / (d*sc)) in [0, nmax].
void final_k_codes(const float* x, const uint8_t packed[kKScaleBytes], uint16_t d16, uint16_t dmin16, int nmax,
                   uint8_t L[kQKK]) {
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    k_scale_min(j, packed, &sc, &m);
    const float d = fp16_to_f32(d16) * sc;
    if (!d) continue;
    const float dm = fp16_to_f32(dmin16) * m;
    for (int i = 0; i < 32; ++i) L[32 * j + i] = (uint8_t)clampi(nearest_int((x[32 * j + i] + dm) / d), 0, nmax);
  }
}

// Importance-weighted Q4_K / Q5_K super-block (llama.cpp's quantize_row_q{4,5}_K_impl with an imatrix):
// sub-block weights qw * sqrt(sigma2 + x^2), sigma2 = 2 * mean(x^2) of the super-block; the 8 scales and
// mins are coded by a weighted positive fit (fit_positive) with each sub-block's weight sum as weight.
void quantize_kx_superblock_w(const float* x, const float* qw, int nmax, float rmin, float rdelta, int nstep,
                              uint16_t* d_out, uint16_t* dmin_out, uint8_t packed[kKScaleBytes], uint8_t L[kQKK]) {
  float scales[8], mins[8], sw[8], weights[32];
  uint8_t Laux[32], Ls[8], Lm[8];
  float sum_x2 = 0;
  for (int l = 0; l < kQKK; ++l) sum_x2 += x[l] * x[l];
  const float sigma2 = 2 * sum_x2 / kQKK;
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    float sumw = 0;
    for (int l = 0; l < 32; ++l) {
      weights[l] = qw[32 * j + l] * std::sqrt(sigma2 + xs[l] * xs[l]);
      sumw += weights[l];
    }
    sw[j] = sumw;
    scales[j] = fit_scale_min(32, nmax, xs, weights, L + 32 * j, &mins[j], Laux, rmin, rdelta, nstep);
  }
  const float d_block = fit_positive(8, 63, scales, Ls, sw);
  const float m_block = fit_positive(8, 63, mins, Lm, sw);
  pack_k_scales(Ls, Lm, packed);
  *d_out = f32_to_fp16(d_block);
  *dmin_out = f32_to_fp16(m_block);
  final_k_codes(x, packed, *d_out, *dmin_out, nmax, L);
}

// Shared part of Q4_K / Q5_K: fits, 6-bit scale coding, final codes L[256] in [0, nmax].
void quantize_kx_superblock(const float* x, int nmax, float rmin, float rdelta, int nstep, uint16_t* d_out,
                            uint16_t* dmin_out, uint8_t packed[kKScaleBytes], uint8_t L[kQKK]) {
  float scales[8], mins[8], weights[32];
  uint8_t Laux[32];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
    scales[j] = fit_scale_min(32, nmax, xs, weights, L + 32 * j, &mins[j], Laux, rmin, rdelta, nstep);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  uint8_t Ls[8], Lm[8];
  for (int j = 0; j < 8; ++j) {
    const uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]), lm = (uint8_t)nearest_int(inv_min * mins[j]);
    Ls[j] = ls < 63 ? ls : 63;
    Lm[j] = lm < 63 ? lm : 63;
  }
  pack_k_scales(Ls, Lm, packed);
  *d_out = f32_to_fp16(max_scale / 63.f);
  *dmin_out = f32_to_fp16(max_min / 63.f);
  final_k_codes(x, packed, *d_out, *dmin_out, nmax, L);
}

}  // namespace

void from_float_q4_K(const float* src, void* dst, int64_t n) { quantize_q4_K_w(src, dst, n, nullptr); }
void from_float_q5_K(const float* src, void* dst, int64_t n) { quantize_q5_K_w(src, dst, n, nullptr); }
void from_float_q6_K(const float* src, void* dst, int64_t n) { quantize_q6_K_w(src, dst, n, nullptr); }

void quantize_q4_K_w(const float* src, void* dst, int64_t n, const float* qw) {
  BlockQ4_K* b = static_cast<BlockQ4_K*>(dst);
  uint8_t L[kQKK];
  for (int64_t i = 0; i < n / kQKK; ++i, src += kQKK) {
    if (qw)
      quantize_kx_superblock_w(src, qw + i * kQKK, 15, -0.9f, 0.05f, 36, &b[i].d, &b[i].dmin, b[i].scales, L);
    else
      quantize_kx_superblock(src, 15, -1.f, 0.1f, 20, &b[i].d, &b[i].dmin, b[i].scales, L);
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) b[i].qs[32 * c + l] = (uint8_t)(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
  }
}

void quantize_q5_K_w(const float* src, void* dst, int64_t n, const float* qw) {
  BlockQ5_K* b = static_cast<BlockQ5_K*>(dst);
  uint8_t L[kQKK];
  for (int64_t i = 0; i < n / kQKK; ++i, src += kQKK) {
    if (qw)
      quantize_kx_superblock_w(src, qw + i * kQKK, 31, -0.9f, 0.05f, 36, &b[i].d, &b[i].dmin, b[i].scales, L);
    else
      quantize_kx_superblock(src, 31, -0.5f, 0.1f, 15, &b[i].d, &b[i].dmin, b[i].scales, L);
    std::memset(b[i].qh, 0, sizeof(b[i].qh));
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        int l1 = L[64 * c + l], l2 = L[64 * c + 32 + l];
        if (l1 > 15) {
          l1 -= 16;
          b[i].qh[l] |= (uint8_t)(1u << (2 * c));
        }
        if (l2 > 15) {
          l2 -= 16;
          b[i].qh[l] |= (uint8_t)(2u << (2 * c));
        }
        b[i].qs[32 * c + l] = (uint8_t)(l1 | (l2 << 4));
      }
    }
  }
}

void quantize_q6_K_w(const float* src, void* dst, int64_t n, const float* qw) {
  BlockQ6_K* b = static_cast<BlockQ6_K*>(dst);
  int8_t L[kQKK];
  float scales[kQKK / 16];
  for (int64_t i = 0; i < n / kQKK; ++i, src += kQKK) {
    float max_scale = 0, max_abs_scale = 0;
    for (int g = 0; g < kQKK / 16; ++g) {
      scales[g] = fit_symmetric(16, 32, src + 16 * g, L + 16 * g, qw ? qw + i * kQKK + 16 * g : nullptr);
      if (std::fabs(scales[g]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[g]);
        max_scale = scales[g];
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&b[i], 0, sizeof(BlockQ6_K));
      continue;
    }
    const float iscale = -128.f / max_scale;
    b[i].d = f32_to_fp16(1 / iscale);
    for (int g = 0; g < kQKK / 16; ++g) {
      const int v = nearest_int(iscale * scales[g]);
      b[i].scales[g] = (int8_t)(v < 127 ? v : 127);
    }
    for (int g = 0; g < kQKK / 16; ++g) {
      const float d = fp16_to_f32(b[i].d) * b[i].scales[g];
      if (!d) continue;
      for (int l = 0; l < 16; ++l)
        L[16 * g + l] = (int8_t)(clampi(nearest_int(src[16 * g + l] / d), -32, 31) + 32);
    }
    for (int h = 0; h < 2; ++h) {
      const int8_t* Lh = L + 128 * h;
      uint8_t* ql = b[i].ql + 64 * h;
      uint8_t* qh = b[i].qh + 32 * h;
      for (int l = 0; l < 32; ++l) {
        const int q1 = Lh[l], q2 = Lh[l + 32], q3 = Lh[l + 64], q4 = Lh[l + 96];
        ql[l] = (uint8_t)((q1 & 0xF) | ((q3 & 0xF) << 4));
        ql[l + 32] = (uint8_t)((q2 & 0xF) | ((q4 & 0xF) << 4));
        qh[l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
      }
    }
  }
}

}  // namespace frugal::qref
