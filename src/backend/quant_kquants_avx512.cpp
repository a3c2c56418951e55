// K-quants (Q4_K, Q5_K, Q6_K) x Q8_K activations on AVX-512 VNNI. Scalar twins: quant_ref_k.cpp.
//
// Arithmetic contract, identical on every path (vec_dot, decode, prefill) for a (row, token) pair, per
// super-block i (256 elements):
//   Q4_K/Q5_K: S_i = sum_s sc_s * sum_{j in sub-block s} q_j * x_j        exact int32 (8 x 32 elements)
//              M_i = sum_s m_s * (bsums[2s] + bsums[2s+1])                 exact int32
//   Q6_K:      S_i = sum_g sc_g * sum_{j in group g} (q_j - 32) * x_j      exact int32 (16 x 16 elements)
//   d_i = f32(d) * d8,  dm_i = f32(dmin) * d8                               one rounding each
//   a_{i mod 2} = fma(float(S_i), d_i, a_{i mod 2});  Q4_K/Q5_K then  a_{i mod 2} -= float(M_i) * dm_i
//   (fnmadd, one rounding);  result = a0 + a1
// Two implementations of it:
//  * row walk (T < 8, vec_dot; decode): one weight row at a time (sequential stream). A super-block is
//    four 64-element registers in element order; vpdpbusd gives int32 lanes of 4 products, vpdpwssd
//    multiplies them by the lane's scale (|lane| < 2^15) and accumulates; S and M are then reduced to
//    scalars and the chains run in scalar fmas.
//  * lane = row (T >= 8; prefill): weights repacked per L2 panel so that, per 32-element sub-block,
//    register q holds codes 4q..4q+3 of 16 rows; activation codes are broadcast 4 at a time, so one
//    vpdpbusd does 16 rows x 4 products; per sub-block one vpmulld applies the 16 rows' scales.
// GCC 12 reports false -Wmaybe-uninitialized inside the AVX-512 intrinsic headers (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/quant_avx512_util.h"
#include "backend/quant.h"
#include "backend/quant_gemm.h"
#include "backend/quant_kernels.h"

namespace frugal::avx512 {
namespace {

constexpr int kQ8KBytes = 292, kQ8KQs = 4, kQ8KBsums = 260;
constexpr int64_t kLaneRowMinT = 8;

// 12 packed bytes -> int32 lanes [sc0..sc7, m0..m7] (6-bit values).
inline __m512i unpack_k_scales(const uint8_t* q) {
  const uint32_t u0 = ld_u32(q), u1 = ld_u32(q + 4), u2 = ld_u32(q + 8);
  constexpr uint32_t k6 = 0x3f3f3f3f, k4 = 0x0f0f0f0f, k2 = 0x03030303;
  const uint32_t sc_lo = u0 & k6, m_lo = u1 & k6;
  const uint32_t sc_hi = (u2 & k4) | (((u0 >> 6) & k2) << 4);
  const uint32_t m_hi = ((u2 >> 4) & k4) | (((u1 >> 6) & k2) << 4);
  return _mm512_cvtepu8_epi32(_mm_set_epi32((int)m_hi, (int)m_lo, (int)sc_hi, (int)sc_lo));
}

// Nibbles of 32 bytes: low nibbles in bytes 0..31, high nibbles in bytes 32..63.
inline __m512i nibbles_32(const uint8_t* q) {
  __m512i z = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)q));
  z = _mm512_mask_srli_epi16(z, 0xFFFF0000u, z, 4);
  return _mm512_and_si512(z, _mm512_set1_epi8(0x0F));
}

// ---------------------------------------------------------------- formats
// codes(blk, k): unsigned codes of elements 64k .. 64k+63 of a super-block, in element order.

template <bool kFive>
struct FmtQ45 {  // Q4_K / Q5_K
  static constexpr int kBytes = kFive ? 176 : 144, kQs = kFive ? 48 : 16;
  static constexpr bool kSix = false;
  static __m512i codes(const uint8_t* blk, int k) {
    __m512i c = nibbles_32(blk + kQs + 32 * k);
    if constexpr (kFive) {
      const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)(blk + 16)));
      const __m512i bit =
          _mm512_mask_blend_epi64(0xF0, _mm512_set1_epi8((char)(1 << (2 * k))), _mm512_set1_epi8((char)(2 << (2 * k))));
      c = _mm512_mask_add_epi8(c, _mm512_test_epi8_mask(qh, bit), c, _mm512_set1_epi8(16));
    }
    return c;
  }
};

struct FmtQ6 {
  static constexpr int kBytes = 210;
  static constexpr bool kSix = true;
  static __m512i codes(const uint8_t* blk, int k) {
    const int h = k / 2;
    const bool odd = k % 2;
    const __m512i L = _mm512_loadu_si512(blk + 64 * h);
    const __m512i H = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)(blk + 128 + 32 * h)));
    const __m512i lo = odd ? _mm512_and_si512(_mm512_srli_epi16(L, 4), _mm512_set1_epi8(0x0F))
                           : _mm512_and_si512(L, _mm512_set1_epi8(0x0F));
    // Bit pair j of qh (j = 0,1 for even k; 2,3 for odd k) moved to bits 4..5.
    const __m512i hi = odd ? _mm512_mask_srli_epi16(H, 0xFFFF0000u, H, 2)
                           : _mm512_mask_slli_epi16(_mm512_slli_epi16(H, 4), 0xFFFF0000u, H, 2);
    return _mm512_or_si512(lo, _mm512_and_si512(hi, _mm512_set1_epi8(0x30)));
  }
};

using FmtQ4 = FmtQ45<false>;
using FmtQ5 = FmtQ45<true>;

// ================================================================ row walk

// Scale of every int32 lane of register k (low 16 bits; high 16 bits 0, for vpdpwssd).
template <class F>
struct WalkScales {
  __m512i lane[4];
  __m256i mins;  // Q4_K/Q5_K: int16 [m0, m0, m1, m1, ..., m7, m7] against the 16 bsums
  explicit WalkScales(const uint8_t* blk) {
    if constexpr (F::kSix) {
      const __m512i s = _mm512_and_si512(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)(blk + 192))),
                                         _mm512_set1_epi32(0xFFFF));
      for (int k = 0; k < 4; ++k) {
        const __m512i idx = _mm512_setr_epi32(4 * k, 4 * k, 4 * k, 4 * k, 4 * k + 1, 4 * k + 1, 4 * k + 1, 4 * k + 1,
                                              4 * k + 2, 4 * k + 2, 4 * k + 2, 4 * k + 2, 4 * k + 3, 4 * k + 3,
                                              4 * k + 3, 4 * k + 3);
        lane[k] = _mm512_permutexvar_epi32(idx, s);
      }
    } else {
      const __m512i s = unpack_k_scales(blk + 4);
      for (int k = 0; k < 4; ++k) {
        const __m512i idx = _mm512_setr_epi32(2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k + 1,
                                              2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1,
                                              2 * k + 1);
        lane[k] = _mm512_permutexvar_epi32(idx, s);
      }
      const __m512i min_idx = _mm512_setr_epi32(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
      mins = _mm512_cvtepi32_epi16(_mm512_permutexvar_epi32(min_idx, s));
    }
  }
};

// out[c * ldo] = dot(W row, column c) for C raw Q8_K columns (stride xrb).
template <class F, int C>
void walk_row(int64_t nsb, const uint8_t* row, const uint8_t* x, size_t xrb, float* out, int64_t ldo) {
  __m128 acc[C][2];
  unroll<C>([&](auto c) { acc[c][0] = acc[c][1] = _mm_setzero_ps(); });
  for (int64_t i = 0; i < nsb; ++i) {
    const uint8_t* wb = row + i * F::kBytes;
    const WalkScales<F> sc(wb);
    __m512i codes[4];
    unroll<4>([&](auto k) { codes[k] = F::codes(wb, k); });
    const float dw = f16_at(F::kSix ? wb + 208 : wb);
    unroll<C>([&](auto c) {
      const uint8_t* xb = x + c * xrb + i * kQ8KBytes;
      __m512i isum = _mm512_setzero_si512();
      unroll<4>([&](auto k) {
        const __m512i xv = _mm512_loadu_si512(xb + kQ8KQs + 64 * k);
        __m512i start = _mm512_setzero_si512();
        if constexpr (F::kSix)  // lanes start at -32 * sum4(x): the offset 32 removed exactly
          start = _mm512_sub_epi32(start, _mm512_dpbusd_epi32(start, _mm512_set1_epi8(32), xv));
        isum = _mm512_dpwssd_epi32(isum, _mm512_dpbusd_epi32(start, codes[k], xv), sc.lane[k]);
      });
      const float d8 = ld_f32(xb);
      const int chain = (int)(i & 1);
      // S (lane 0) and M (lane 1) reduced together, then converted together (exact ints -> floats).
      const __m256i s8 = _mm256_add_epi32(_mm512_castsi512_si256(isum), _mm512_extracti64x4_epi64(isum, 1));
      __m256i m8 = _mm256_setzero_si256();
      if constexpr (!F::kSix)
        m8 = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i*)(xb + kQ8KBsums)), sc.mins);
      __m256i h = _mm256_hadd_epi32(s8, m8);  // [s01 s23 m01 m23 | s45 s67 m45 m67]
      h = _mm256_hadd_epi32(h, h);            // [S0 M0 S0 M0 | S1 M1 S1 M1]
      const __m128 sm = _mm_cvtepi32_ps(_mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)));
      acc[c][chain] = _mm_fmadd_ss(sm, _mm_set_ss(dw * d8), acc[c][chain]);
      if constexpr (!F::kSix)
        acc[c][chain] = _mm_fnmadd_ss(_mm_movehdup_ps(sm), _mm_set_ss(f16_at(wb + 2) * d8), acc[c][chain]);
    });
  }
  unroll<C>([&](auto c) { out[c * ldo] = _mm_cvtss_f32(_mm_add_ss(acc[c][0], acc[c][1])); });
}

template <class F>
void gemm_walk(int64_t n, const uint8_t* w, size_t w_row_bytes, int64_t r0, int64_t r1, const uint8_t* x,
               size_t x_row_bytes, int64_t T, float* y, int64_t ldy) {
  const int64_t nsb = n / 256;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w + r * w_row_bytes;
    for (int64_t c0 = 0; c0 < T; c0 += 4) {
      const uint8_t* xc = x + c0 * x_row_bytes;
      float* out = y + c0 * ldy + r;
      switch (std::min<int64_t>(4, T - c0)) {
        case 1: walk_row<F, 1>(nsb, row, xc, x_row_bytes, out, ldy); break;
        case 2: walk_row<F, 2>(nsb, row, xc, x_row_bytes, out, ldy); break;
        case 3: walk_row<F, 3>(nsb, row, xc, x_row_bytes, out, ldy); break;
        default: walk_row<F, 4>(nsb, row, xc, x_row_bytes, out, ldy); break;
      }
    }
  }
}

// ================================================================ lane = row

// Packed weights: groups of 16 rows; per super-block: codes (8 sub-blocks x 8 registers: register q of
// sub-block s, lane j = codes 32s + 4q .. 32s + 4q + 3 of row j), then
//   Q4_K/Q5_K: sc (8 int32 registers, lane j = row j's sub-block scale), mins (4 registers of int16
//              pairs [m_2t | m_2t+1]), d (16 f32), dmin (16 f32)
//   Q6_K:      sc (16 int32 registers, one per 16-element group), d (16 f32)
template <class F>
struct LrPack {
  static constexpr size_t kCodes = 4096, kSc = kCodes, kMins = kSc + 512;
  static constexpr size_t kD = F::kSix ? kSc + 1024 : kMins + 256, kDmin = kD + 64;
  static constexpr size_t kSbBytes = F::kSix ? kD + 64 : kDmin + 64;

  static void pack(const uint8_t* w, size_t w_row_bytes, int64_t rows, int64_t nsb, uint8_t* dst) {
    for (int64_t g0 = 0; g0 < rows; g0 += 16) {
      const int cnt = (int)std::min<int64_t>(16, rows - g0);
      uint8_t* p = dst + (g0 / 16) * nsb * kSbBytes;
      for (int64_t i = 0; i < nsb; ++i, p += kSbBytes) pack_superblock(w + g0 * w_row_bytes + i * F::kBytes,
                                                                         w_row_bytes, cnt, p);
    }
  }

  static void pack_superblock(const uint8_t* blk0, size_t w_row_bytes, int cnt, uint8_t* p) {
    __m256i sub[8][16];
    alignas(64) int32_t sc[16][16] = {};  // [scale index][row]
    alignas(64) int32_t mp[4][16] = {};
    alignas(64) float d[16] = {}, dmin[16] = {};
    for (int j = 0; j < 16; ++j) {
      if (j >= cnt) {
        for (int s = 0; s < 8; ++s) sub[s][j] = _mm256_setzero_si256();
        continue;
      }
      const uint8_t* blk = blk0 + j * w_row_bytes;
      for (int k = 0; k < 4; ++k) {
        const __m512i c = F::codes(blk, k);
        sub[2 * k][j] = _mm512_castsi512_si256(c);
        sub[2 * k + 1][j] = _mm512_extracti64x4_epi64(c, 1);
      }
      if constexpr (F::kSix) {
        for (int g = 0; g < 16; ++g) sc[g][j] = (int8_t)blk[192 + g];
        d[j] = f16_at(blk + 208);
      } else {
        alignas(64) int32_t s[16];
        _mm512_store_si512(s, unpack_k_scales(blk + 4));
        for (int t = 0; t < 8; ++t) sc[t][j] = s[t];
        for (int t = 0; t < 4; ++t) mp[t][j] = s[8 + 2 * t] | (s[9 + 2 * t] << 16);
        d[j] = f16_at(blk);
        dmin[j] = f16_at(blk + 2);
      }
    }
    for (int s = 0; s < 8; ++s) {
      __m512i out[8];
      transpose_16x8(sub[s], out);
      for (int q = 0; q < 8; ++q) _mm512_store_si512(p + (8 * s + q) * 64, out[q]);
    }
    for (int t = 0; t < (F::kSix ? 16 : 8); ++t) _mm512_store_si512(p + kSc + 64 * t, _mm512_load_si512(sc[t]));
    if constexpr (!F::kSix) {
      for (int t = 0; t < 4; ++t) _mm512_store_si512(p + kMins + 64 * t, _mm512_load_si512(mp[t]));
      _mm512_store_ps(p + kDmin, _mm512_load_ps(dmin));
    }
    _mm512_store_ps(p + kD, _mm512_load_ps(d));
  }
};

// Per column and super-block, 16 int32 of activation-side data for the lane = row tile:
//   Q4_K/Q5_K: 4 int16 pairs [B_2t | B_2t+1], B_s = bsums[2s] + bsums[2s+1];  Q6_K: -32 * bsums[g].
template <class F>
void pack_lr_aux(const uint8_t* x, size_t x_row_bytes, int64_t cols, int64_t nsb, int32_t* dst) {
  for (int64_t c = 0; c < cols; ++c)
    for (int64_t i = 0; i < nsb; ++i, dst += 16) {
      int16_t bs[16];
      std::memcpy(bs, x + c * x_row_bytes + i * kQ8KBytes + kQ8KBsums, sizeof bs);
      std::memset(dst, 0, 64);
      if constexpr (F::kSix) {
        for (int g = 0; g < 16; ++g) dst[g] = -32 * bs[g];
      } else {
        for (int t = 0; t < 4; ++t) {
          const int b0 = bs[4 * t] + bs[4 * t + 1], b1 = bs[4 * t + 2] + bs[4 * t + 3];
          dst[t] = (int32_t)((uint32_t)(uint16_t)b0 | ((uint32_t)(uint16_t)b1 << 16));
        }
      }
    }
}

// 16 rows (one packed group) x C columns: raw Q8_K columns (stride xrb) and their aux (stride nsb*16).
template <class F, int C>
void lr_tile(int64_t nsb, const uint8_t* wg, const uint8_t* x, size_t xrb, const int32_t* aux, float* y,
             int64_t ldy, __mmask16 store) {
  using P = LrPack<F>;
  __m512 acc[C][2];
  unroll<C>([&](auto c) { acc[c][0] = acc[c][1] = _mm512_setzero_ps(); });
  auto superblock = [&](int64_t i, auto chain) __attribute__((always_inline)) {
    const uint8_t* p = wg + i * P::kSbBytes;
    __m512i isum[C];
    unroll<C>([&](auto c) { isum[c] = _mm512_setzero_si512(); });
    for (int s = 0; s < 8; ++s) {
      __m512i wq[8];
      unroll<8>([&](auto q) { wq[q] = _mm512_load_si512(p + (8 * s + q) * 64); });
      unroll<C>([&](auto c) {
        const uint8_t* xq = x + c * xrb + i * kQ8KBytes + kQ8KQs + 32 * s;
        if constexpr (F::kSix) {  // two 16-element groups, each starting at -32 * its bsum
          const int32_t* ax = aux + (c * nsb + i) * 16;
          __m512i g0 = _mm512_set1_epi32(ax[2 * s]), g1 = _mm512_set1_epi32(ax[2 * s + 1]);
          unroll<4>([&](auto q) {
            g0 = _mm512_dpbusd_epi32(g0, wq[q], bcast_i32(xq + 4 * q));
            g1 = _mm512_dpbusd_epi32(g1, wq[q + 4], bcast_i32(xq + 16 + 4 * q));
          });
          isum[c] = _mm512_add_epi32(isum[c], _mm512_mullo_epi32(g0, _mm512_load_si512(p + P::kSc + 128 * s)));
          isum[c] = _mm512_add_epi32(isum[c], _mm512_mullo_epi32(g1, _mm512_load_si512(p + P::kSc + 128 * s + 64)));
        } else {
          __m512i sub = _mm512_setzero_si512();
          unroll<8>([&](auto q) { sub = _mm512_dpbusd_epi32(sub, wq[q], bcast_i32(xq + 4 * q)); });
          isum[c] = _mm512_add_epi32(isum[c], _mm512_mullo_epi32(sub, _mm512_load_si512(p + P::kSc + 64 * s)));
        }
      });
    }
    unroll<C>([&](auto c) {
      const __m512 d8 = _mm512_set1_ps(ld_f32(x + c * xrb + i * kQ8KBytes));
      acc[c][chain] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[c]), _mm512_mul_ps(_mm512_load_ps(p + P::kD), d8),
                                      acc[c][chain]);
      if constexpr (!F::kSix) {
        const int32_t* ax = aux + (c * nsb + i) * 16;
        __m512i m = _mm512_setzero_si512();
        unroll<4>([&](auto t) {
          m = _mm512_dpwssd_epi32(m, _mm512_load_si512(p + P::kMins + 64 * t), _mm512_set1_epi32(ax[t]));
        });
        acc[c][chain] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(m), _mm512_mul_ps(_mm512_load_ps(p + P::kDmin), d8),
                                         acc[c][chain]);
      }
    });
  };
  int64_t i = 0;
  for (; i + 2 <= nsb; i += 2) {
    superblock(i, std::integral_constant<int, 0>{});
    superblock(i + 1, std::integral_constant<int, 1>{});
  }
  if (i < nsb) superblock(i, std::integral_constant<int, 0>{});
  unroll<C>([&](auto c) { _mm512_mask_storeu_ps(y + c * ldy, store, _mm512_add_ps(acc[c][0], acc[c][1])); });
}

constexpr int kLrCols = 4;
constexpr size_t kLrPanelBytes = 512 * 1024;

template <class F>
void gemm_lane_row(int64_t n, const uint8_t* w, size_t w_row_bytes, int64_t r0, int64_t r1, const uint8_t* x,
                   size_t x_row_bytes, int64_t T, float* y, int64_t ldy) {
  thread_local std::vector<uint8_t> abuf, wbuf;
  const int64_t nsb = n / 256;
  int32_t* aux = reinterpret_cast<int32_t*>(grow(abuf, (size_t)T * nsb * 64));
  pack_lr_aux<F>(x, x_row_bytes, T, nsb, aux);
  const size_t gb = (size_t)nsb * LrPack<F>::kSbBytes;
  const int64_t panel = 16 * std::clamp<int64_t>((int64_t)(kLrPanelBytes / gb), 1, 16);
  uint8_t* wl = grow(wbuf, (size_t)(panel / 16) * gb);
  for (int64_t p0 = r0; p0 < r1; p0 += panel) {
    const int64_t rows = std::min(panel, r1 - p0);
    LrPack<F>::pack(w + p0 * w_row_bytes, w_row_bytes, rows, nsb, wl);
    for (int64_t t0 = 0; t0 < T; t0 += kLrCols) {
      const uint8_t* xc = x + t0 * x_row_bytes;
      const int32_t* ac = aux + t0 * nsb * 16;
      for (int64_t g0 = 0; g0 < rows; g0 += 16) {
        const uint8_t* wg = wl + (g0 / 16) * gb;
        float* out = y + t0 * ldy + p0 + g0;
        const __mmask16 valid = (__mmask16)((1u << std::min<int64_t>(16, rows - g0)) - 1);
        switch (std::min<int64_t>(kLrCols, T - t0)) {
          case 1: lr_tile<F, 1>(nsb, wg, xc, x_row_bytes, ac, out, ldy, valid); break;
          case 2: lr_tile<F, 2>(nsb, wg, xc, x_row_bytes, ac, out, ldy, valid); break;
          case 3: lr_tile<F, 3>(nsb, wg, xc, x_row_bytes, ac, out, ldy, valid); break;
          default: lr_tile<F, 4>(nsb, wg, xc, x_row_bytes, ac, out, ldy, valid); break;
        }
      }
    }
  }
}

// ---- repacked weights (QuantTraits::repack): the whole matrix in LrPack groups, built once

template <class F>
size_t kq_group_bytes(int64_t n) {
  return (size_t)(n / 256) * LrPack<F>::kSbBytes;
}

template <class F>
void kq_repack(int64_t n, const void* w, size_t w_row_bytes, int64_t N, int64_t g0, int64_t g1, void* dst) {
  const int64_t rows = std::min(N, g1 * 16) - g0 * 16;
  if (rows <= 0) return;
  LrPack<F>::pack(static_cast<const uint8_t*>(w) + g0 * 16 * w_row_bytes, w_row_bytes, rows, n / 256,
                  static_cast<uint8_t*>(dst));
  const int64_t packed = (rows + 15) / 16;  // groups wholly past N (N < g1 * 16 - 15): zeros
  if (packed < g1 - g0)
    std::memset(static_cast<uint8_t*>(dst) + packed * kq_group_bytes<F>(n), 0, (g1 - g0 - packed) * kq_group_bytes<F>(n));
}

template <class F>
void kq_gemm_repacked(int64_t n, const void* wp, int64_t r0, int64_t r1, const void* x, size_t x_row_bytes, int64_t T,
                      float* y, int64_t ldy) {
  if (r0 >= r1 || T <= 0) return;
  thread_local std::vector<uint8_t> abuf;
  const int64_t nsb = n / 256;
  int32_t* aux = reinterpret_cast<int32_t*>(grow(abuf, (size_t)T * nsb * 64));
  const auto* xb = static_cast<const uint8_t*>(x);
  pack_lr_aux<F>(xb, x_row_bytes, T, nsb, aux);
  const size_t gb = kq_group_bytes<F>(n);
  const int64_t g_first = r0 / 16, g_last = (r1 + 15) / 16;
  const int64_t panel = std::clamp<int64_t>((int64_t)(kLrPanelBytes / gb), 1, 16);
  for (int64_t p0 = g_first; p0 < g_last; p0 += panel) {
    const int64_t p1 = std::min(g_last, p0 + panel);
    for (int64_t t0 = 0; t0 < T; t0 += kLrCols) {
      const uint8_t* xc = xb + t0 * x_row_bytes;
      const int32_t* ac = aux + t0 * nsb * 16;
      for (int64_t g = p0; g < p1; ++g) {
        const int64_t lo = std::max(r0, g * 16) - g * 16, hi = std::min(r1, g * 16 + 16) - g * 16;
        const __mmask16 store = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
        const uint8_t* wg = static_cast<const uint8_t*>(wp) + (size_t)g * gb;
        float* out = y + t0 * ldy + g * 16;
        switch (std::min<int64_t>(kLrCols, T - t0)) {
          case 1: lr_tile<F, 1>(nsb, wg, xc, x_row_bytes, ac, out, ldy, store); break;
          case 2: lr_tile<F, 2>(nsb, wg, xc, x_row_bytes, ac, out, ldy, store); break;
          case 3: lr_tile<F, 3>(nsb, wg, xc, x_row_bytes, ac, out, ldy, store); break;
          default: lr_tile<F, 4>(nsb, wg, xc, x_row_bytes, ac, out, ldy, store); break;
        }
      }
    }
  }
}

template <class F>
void gemm_kquant(int64_t n, const void* w, size_t wrb, int64_t r0, int64_t r1, const void* x, size_t xrb, int64_t T,
                 float* y, int64_t ldy) {
  if (r0 >= r1 || T <= 0) return;
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* xb = static_cast<const uint8_t*>(x);
  if (T < kLaneRowMinT) {
    gemm_walk<F>(n, wb, wrb, r0, r1, xb, xrb, T, y, ldy);
  } else {
    gemm_lane_row<F>(n, wb, wrb, r0, r1, xb, xrb, T, y, ldy);
  }
}

}  // namespace

void vec_dot_q4_K(int64_t n, float* s, const void* x, const void* y) {
  walk_row<FmtQ4, 1>(n / 256, static_cast<const uint8_t*>(x), static_cast<const uint8_t*>(y), 0, s, 1);
}
void vec_dot_q5_K(int64_t n, float* s, const void* x, const void* y) {
  walk_row<FmtQ5, 1>(n / 256, static_cast<const uint8_t*>(x), static_cast<const uint8_t*>(y), 0, s, 1);
}
void vec_dot_q6_K(int64_t n, float* s, const void* x, const void* y) {
  walk_row<FmtQ6, 1>(n / 256, static_cast<const uint8_t*>(x), static_cast<const uint8_t*>(y), 0, s, 1);
}

void gemm_q4_K(int64_t n, const void* w, size_t wrb, int64_t r0, int64_t r1, const void* x, size_t xrb, int64_t T,
               float* y, int64_t ldy) {
  gemm_kquant<FmtQ4>(n, w, wrb, r0, r1, x, xrb, T, y, ldy);
}
void gemm_q5_K(int64_t n, const void* w, size_t wrb, int64_t r0, int64_t r1, const void* x, size_t xrb, int64_t T,
               float* y, int64_t ldy) {
  gemm_kquant<FmtQ5>(n, w, wrb, r0, r1, x, xrb, T, y, ldy);
}
void gemm_q6_K(int64_t n, const void* w, size_t wrb, int64_t r0, int64_t r1, const void* x, size_t xrb, int64_t T,
               float* y, int64_t ldy) {
  gemm_kquant<FmtQ6>(n, w, wrb, r0, r1, x, xrb, T, y, ldy);
}

void fill_repacked_kquant(QuantTraits* row) {
  auto set = [&](auto fmt) {
    using F = decltype(fmt);
    row->repack_group_bytes = kq_group_bytes<F>;
    row->repack = kq_repack<F>;
    row->gemm_repacked = kq_gemm_repacked<F>;
  };
  switch (row->type) {
    case DType::Q4_K: set(FmtQ4{}); break;
    case DType::Q5_K: set(FmtQ5{}); break;
    case DType::Q6_K: set(FmtQ6{}); break;
    default: break;
  }
  // Below 8 tokens the row walk (one vpdpwssd per lane of scales) is as fast or faster (batched-bench,
  // Q4_K_M, 4 sequences: 37 t/s repacked from T = 2 vs 67 t/s for llama.cpp).
  switch (row->type) {
    case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: row->repack_min_T = 8; break;
    default: break;
  }
}

}  // namespace frugal::avx512
