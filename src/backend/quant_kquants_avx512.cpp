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
//  * row walk (T < 8, vec_dot; decode): four weight rows at a time (two for 3-4 tokens), each a
//    sequential stream. A super-block is four 64-element registers in element order; vpdpbusd gives
//    int32 lanes of 4 products, vpdpwssd multiplies them by the lane's scale (|lane| < 2^15) and
//    accumulates; S and M of the rows are reduced together (lane = row) and the chains run as 4-lane fmas,
//    lane r being row r's scalar chain. The rows share the activation loads and the reductions.
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

// Q4_K/Q5_K: the 12 packed scale bytes (at blk + 4) as 16 bytes [sc0..sc7, m0..m7] (6-bit values), in
// vector registers: two byte shuffles place each value's low bits and its 2 high bits, then shifts, masks.
inline __m128i unpack_k_scale_bytes(const uint8_t* q) {
  const __m128i u = _mm_loadu_si128((const __m128i*)q);  // q[0..11] + 4 bytes of codes (unused)
  // Low bits: sc0-3 = q0-3, sc4-7 = q8-11 & 15, m0-3 = q4-7, m4-7 = q8-11 >> 4.
  __m128i a = _mm_shuffle_epi8(u, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
  a = _mm_mask_mov_epi8(a, 0xF000, _mm_srli_epi16(a, 4));
  a = _mm_and_si128(a, _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, 15));
  // High bits of sc4-7 = q0-3 >> 6, of m4-7 = q4-7 >> 6, moved to bits 4..5.
  const __m128i b = _mm_shuffle_epi8(u, _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
  return _mm_or_si128(a, _mm_and_si128(_mm_srli_epi16(b, 2), _mm_set1_epi8(0x30)));
}

// 12 packed bytes -> int32 lanes [sc0..sc7, m0..m7].
inline __m512i unpack_k_scales(const uint8_t* q) { return _mm512_cvtepu8_epi32(unpack_k_scale_bytes(q)); }

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

// Scale of every int32 lane of register k (low 16 bits; high 16 bits 0, for vpdpwssd), and for
// Q4_K/Q5_K the mins as int16 [m0, m0, m1, m1, ..., m7, m7] against the 16 bsums.
template <class F>
struct WalkScales {
  __m512i s;  // Q4_K/Q5_K: the scale bytes in every 128-bit lane; Q6_K: int32 lanes, scale & 0xFFFF
  WalkScales() = default;
  explicit WalkScales(const uint8_t* blk) {
    if constexpr (F::kSix)
      s = _mm512_and_si512(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)(blk + 192))),
                           _mm512_set1_epi32(0xFFFF));
    else
      s = _mm512_broadcast_i32x4(unpack_k_scale_bytes(blk + 4));
  }
  template <int k>
  __m512i lane() const {
    if constexpr (F::kSix) {
      return _mm512_permutexvar_epi32(
          _mm512_setr_epi32(4 * k, 4 * k, 4 * k, 4 * k, 4 * k + 1, 4 * k + 1, 4 * k + 1, 4 * k + 1, 4 * k + 2,
                            4 * k + 2, 4 * k + 2, 4 * k + 2, 4 * k + 3, 4 * k + 3, 4 * k + 3, 4 * k + 3),
          s);
    } else {  // lanes 0-7: sc_2k, lanes 8-15: sc_2k+1 (byte, then three zero bytes)
      constexpr char a = (char)(2 * k), b = (char)(2 * k + 1), z = -1;
      return _mm512_shuffle_epi8(s, _mm512_set_epi8(z, z, z, b, z, z, z, b, z, z, z, b, z, z, z, b,  //
                                                    z, z, z, b, z, z, z, b, z, z, z, b, z, z, z, b,  //
                                                    z, z, z, a, z, z, z, a, z, z, z, a, z, z, z, a,  //
                                                    z, z, z, a, z, z, z, a, z, z, z, a, z, z, z, a));
    }
  }
  __m256i mins() const {
    constexpr char z = -1;
    return _mm256_shuffle_epi8(_mm512_castsi512_si256(s),
                               _mm256_setr_epi8(8, z, 8, z, 9, z, 9, z, 10, z, 10, z, 11, z, 11, z,  //
                                                12, z, 12, z, 13, z, 13, z, 14, z, 14, z, 15, z, 15, z));
  }
};

// Lane r (r < R) = sum of the int32 lanes of v[r]; lanes R..3 are 0.
template <int R>
inline __m128i lane_sums(const __m256i* v) {
  const __m256i z = _mm256_setzero_si256();
  const __m256i h01 = _mm256_hadd_epi32(v[0], R > 1 ? v[1] : z);
  const __m256i h23 = R > 2 ? _mm256_hadd_epi32(v[2], R > 3 ? v[3] : z) : z;
  const __m256i h = _mm256_hadd_epi32(h01, h23);  // [r0 r1 r2 r3 | r0 r1 r2 r3], partial sums
  return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

// R weight rows w + r * step * wrb (r < R) x C raw Q8_K columns (stride xrb): out[c * ldo + r * step] =
// dot(row r, column c). Every (row, column) pair follows the file's arithmetic contract exactly (lane r of
// each float vector is that pair's scalar chain); rows share the activation loads and the reductions.
template <class F, int R, int C>
void walk_rows(int64_t nsb, const uint8_t* w, size_t wrb, int64_t step, const uint8_t* x, size_t xrb, float* out,
               int64_t ldo) {
  __m128 acc[C][2];
  unroll<C>([&](auto c) { acc[c][0] = acc[c][1] = _mm_setzero_ps(); });
  for (int64_t i = 0; i < nsb; ++i) {
    const uint8_t* wb[R];
    unroll<R>([&](auto r) { wb[r] = w + r * step * wrb + i * F::kBytes; });
    WalkScales<F> sc[R];
    unroll<R>([&](auto r) { sc[r] = WalkScales<F>(wb[r]); });
    __m512i isum[R][C];
    unroll<R>([&](auto r) { unroll<C>([&](auto c) { isum[r][c] = _mm512_setzero_si512(); }); });
    unroll<4>([&](auto k) {
      __m512i xv[C], start[C];
      unroll<C>([&](auto c) {
        xv[c] = _mm512_loadu_si512(x + c * xrb + i * kQ8KBytes + kQ8KQs + 64 * k);
        start[c] = _mm512_setzero_si512();
        if constexpr (F::kSix)  // lanes start at -32 * sum4(x): the offset 32 removed exactly
          start[c] = _mm512_sub_epi32(start[c], _mm512_dpbusd_epi32(start[c], _mm512_set1_epi8(32), xv[c]));
      });
      unroll<R>([&](auto r) {
        const __m512i codes = F::codes(wb[r], k);
        const __m512i lane = sc[r].template lane<k>();
        unroll<C>([&](auto c) {
          isum[r][c] = _mm512_dpwssd_epi32(isum[r][c], _mm512_dpbusd_epi32(start[c], codes, xv[c]), lane);
        });
      });
    });
    // Per row: d (and dmin) as f32, lane r (built in registers: a store + wider load would stall).
    uint32_t h[4] = {0, 0, 0, 0};
    unroll<R>([&](auto r) { h[r] = F::kSix ? ld_u16(wb[r] + 208) : ld_u32(wb[r]); });
    const __m128i hv = _mm_setr_epi32((int)h[0], (int)h[1], (int)h[2], (int)h[3]);
    __m128 dw, dmw = _mm_setzero_ps();
    if constexpr (F::kSix) {
      dw = _mm_cvtph_ps(_mm_packus_epi32(hv, hv));
    } else {  // [d, dmin] pairs of the R rows
      const __m256 q = _mm256_permutevar8x32_ps(_mm256_cvtph_ps(hv), _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
      dw = _mm256_castps256_ps128(q);
      dmw = _mm256_extractf128_ps(q, 1);
    }
    const int chain = (int)(i & 1);
    unroll<C>([&](auto c) {
      const uint8_t* xb = x + c * xrb + i * kQ8KBytes;
      __m256i s8[R], m8[R];
      unroll<R>([&](auto r) {
        s8[r] = _mm256_add_epi32(_mm512_castsi512_si256(isum[r][c]), _mm512_extracti64x4_epi64(isum[r][c], 1));
      });
      const __m128 d8 = _mm_set1_ps(ld_f32(xb));
      acc[c][chain] = _mm_fmadd_ps(_mm_cvtepi32_ps(lane_sums<R>(s8)), _mm_mul_ps(dw, d8), acc[c][chain]);
      if constexpr (!F::kSix) {
        const __m256i bsums = _mm256_loadu_si256((const __m256i*)(xb + kQ8KBsums));
        unroll<R>([&](auto r) { m8[r] = _mm256_madd_epi16(bsums, sc[r].mins()); });
        acc[c][chain] = _mm_fnmadd_ps(_mm_cvtepi32_ps(lane_sums<R>(m8)), _mm_mul_ps(dmw, d8), acc[c][chain]);
      }
    });
  }
  unroll<C>([&](auto c) {
    alignas(16) float v[4];
    _mm_store_ps(v, _mm_add_ps(acc[c][0], acc[c][1]));
    unroll<R>([&](auto r) { out[c * ldo + r * step] = v[r]; });
  });
}

// Rows [r0, r1) x C columns. The range is cut into 4 slices of q rows and row j of every slice is done at
// once (4 rows; as 2 + 2 for 3-4 columns, 4 x 4 would spill registers), so each slice is one sequential
// stream. (4 adjacent rows at a time would be 4 short streams, each ending where the next begins: the
// hardware prefetcher does not follow that, and cold-weight decode ran 1.5-2.5x slower.) Leftover rows
// one at a time. All columns are done per row step, so rows are read from memory once for any T.
template <class F, int C>
void walk_columns(int64_t nsb, const uint8_t* w, size_t wrb, const uint8_t* x, size_t xrb,
                  float* y, int64_t ldy, int64_t j, int64_t q) {
  if (q == 0) {
    walk_rows<F, 1, C>(nsb, w + j * wrb, wrb, 0, x, xrb, y + j, ldy);
  } else if constexpr (C <= 2) {
    walk_rows<F, 4, C>(nsb, w + j * wrb, wrb, q, x, xrb, y + j, ldy);
  } else {
    walk_rows<F, 2, C>(nsb, w + j * wrb, wrb, q, x, xrb, y + j, ldy);
    walk_rows<F, 2, C>(nsb, w + (j + 2 * q) * wrb, wrb, q, x, xrb, y + j + 2 * q, ldy);
  }
}

template <class F>
void gemm_walk(int64_t n, const uint8_t* w, size_t w_row_bytes, int64_t r0, int64_t r1, const uint8_t* x,
               size_t x_row_bytes, int64_t T, float* y, int64_t ldy) {
  const int64_t nsb = n / 256, q = (r1 - r0) / 4;
  auto row_step = [&](int64_t j, int64_t slice) {
    for (int64_t c0 = 0; c0 < T; c0 += 4) {
      const uint8_t* xc = x + c0 * x_row_bytes;
      float* out = y + c0 * ldy;
      switch (std::min<int64_t>(4, T - c0)) {
        case 1: walk_columns<F, 1>(nsb, w, w_row_bytes, xc, x_row_bytes, out, ldy, j, slice); break;
        case 2: walk_columns<F, 2>(nsb, w, w_row_bytes, xc, x_row_bytes, out, ldy, j, slice); break;
        case 3: walk_columns<F, 3>(nsb, w, w_row_bytes, xc, x_row_bytes, out, ldy, j, slice); break;
        default: walk_columns<F, 4>(nsb, w, w_row_bytes, xc, x_row_bytes, out, ldy, j, slice); break;
      }
    }
  };
  for (int64_t j = r0; j < r0 + q; ++j) row_step(j, q);
  for (int64_t r = r0 + 4 * q; r < r1; ++r) row_step(r, 0);
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
      unroll<C>([&](auto c) __attribute__((always_inline)) {
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
    unroll<C>([&](auto c) __attribute__((always_inline)) {
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
  walk_rows<FmtQ4, 1, 1>(n / 256, static_cast<const uint8_t*>(x), 0, 0, static_cast<const uint8_t*>(y), 0, s, 1);
}
void vec_dot_q5_K(int64_t n, float* s, const void* x, const void* y) {
  walk_rows<FmtQ5, 1, 1>(n / 256, static_cast<const uint8_t*>(x), 0, 0, static_cast<const uint8_t*>(y), 0, s, 1);
}
void vec_dot_q6_K(int64_t n, float* s, const void* x, const void* y) {
  walk_rows<FmtQ6, 1, 1>(n / 256, static_cast<const uint8_t*>(x), 0, 0, static_cast<const uint8_t*>(y), 0, s, 1);
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
