// Legacy 32-element block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL) x Q8_0/Q8_1 activations on
// AVX-512 VNNI. Scalar twins: quant_ref.cpp (vec_dot_q*_q8_*), quant_ref_iq.cpp (vec_dot_iq4_nl_q8_0).
//
// Arithmetic contract, identical on every path (vec_dot, decode, prefill) for a (row, token) pair:
//   isum_b = sum_i (qw_i - offset) * qx_i            exact int32 (offset: Q8_0 128 after xor 0x80,
//                                                    IQ4_NL 128 (codebook + 128 via vpshufb),
//                                                    Q4_0 8, Q5_0 16, Q4_1/Q5_1 0)
//   s_b    = f32(dw_b) * f32(dx_b)                   one rounding
//   a_{b mod 4} = fma(float(isum_b), s_b, a_{b mod 4})        four accumulator chains, blocks in order
//   Q4_1/Q5_1: then a_{b mod 4} = fma(f32(mw_b), f32(sx_b), a_{b mod 4})
//   result = (a0 + a2) + (a1 + a3)
// Two implementations of it:
//  * row walk (T < 8, vec_dot; decode): T = 1 reads 4 rows at once, one from each quarter of the row
//    range (4 long sequential streams, 2 blocks per row in turn, activation loads shared); T > 1 one
//    weight row at a time, all columns. Two blocks per register, vpdpbusd with unsigned weight codes (the
//    offset is removed exactly by starting each lane at -offset * sum4(x)), lane sums of 8 (T = 1) or 16
//    blocks reduced to lane = block by a transpose-add tree, then 4-lane fmas (lane = chain), one per 4
//    blocks.
//  * lane = row (T >= 8; prefill): weights repacked per L2 panel so that register q of a block holds
//    codes 4q..4q+3 of 16 rows; activation codes are broadcast 4 at a time, so one vpdpbusd does
//    16 rows x 4 products and the float work per block is one cvt/mul/fma for 16 rows; the four
//    chains are four registers per column.
// GCC 12 reports false -Wmaybe-uninitialized inside the AVX-512 intrinsic headers (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "backend/quant_avx512_util.h"
#include "backend/quant_blocks.h"  // kIQ4NLValues only (its inline functions are not ISA-local)
#include "backend/quant_gemm.h"
#include "backend/quant_kernels.h"

namespace frugal::avx512 {
namespace {

// ---- weight formats: codes of two consecutive blocks (or one, upper half don't-care)

inline __m512i nibbles_2x(const uint8_t* qs0, const uint8_t* qs1) {
  // [qs0, qs0, qs1, qs1] by 128-bit lane, then lanes 1 and 3 shifted right by 4: low nibbles give
  // elements 0..15 of a block, high nibbles elements 16..31.
  __m512i z = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i*)qs0));
  z = _mm512_mask_broadcast_i32x4(z, 0xFF00, _mm_loadu_si128((const __m128i*)qs1));
  z = _mm512_mask_srli_epi16(z, 0xFF00FF00u, z, 4);
  return _mm512_and_si512(z, _mm512_set1_epi8(0x0F));
}

inline __m512i add_high_bits(__m512i codes, uint32_t qh0, uint32_t qh1) {
  const __mmask64 k = (__mmask64)qh0 | ((__mmask64)qh1 << 32);
  return _mm512_mask_add_epi8(codes, k, codes, _mm512_set1_epi8(16));
}

struct WQ8_0 {
  static constexpr int kBytes = 34, kOffset = 128;
  static constexpr bool kMin = false;
  static __m512i codes(const uint8_t* b0, const uint8_t* b1, bool two) {
    const __m512i q = two ? load_2x256(b0 + 2, b1 + 2) : load_1x256(b0 + 2);
    return _mm512_xor_si512(q, _mm512_set1_epi8((char)0x80));
  }
};

// Codebook values + 128 (1..241, unsigned for vpdpbusd), looked up by nibble in every 128-bit lane.
struct WIQ4_NL {
  static constexpr int kBytes = 18, kOffset = 128;
  static constexpr bool kMin = false;
  static constexpr std::array<uint8_t, 16> kBiased = [] {
    std::array<uint8_t, 16> a{};
    for (int i = 0; i < 16; ++i) a[i] = (uint8_t)(kIQ4NLValues[i] + 128);
    return a;
  }();
  static __m512i codes(const uint8_t* b0, const uint8_t* b1, bool two) {
    const __m512i table = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i*)kBiased.data()));
    return _mm512_shuffle_epi8(table, nibbles_2x(b0 + 2, two ? b1 + 2 : b0 + 2));
  }
};

struct WQ4_0 {
  static constexpr int kBytes = 18, kOffset = 8;
  static constexpr bool kMin = false;
  static __m512i codes(const uint8_t* b0, const uint8_t* b1, bool two) {
    return nibbles_2x(b0 + 2, two ? b1 + 2 : b0 + 2);
  }
};

struct WQ4_1 {
  static constexpr int kBytes = 20, kOffset = 0;
  static constexpr bool kMin = true;
  static __m512i codes(const uint8_t* b0, const uint8_t* b1, bool two) {
    return nibbles_2x(b0 + 4, two ? b1 + 4 : b0 + 4);
  }
};

struct WQ5_0 {
  static constexpr int kBytes = 22, kOffset = 16;
  static constexpr bool kMin = false;
  static __m512i codes(const uint8_t* b0, const uint8_t* b1, bool two) {
    const uint8_t* c1 = two ? b1 : b0;
    return add_high_bits(nibbles_2x(b0 + 6, c1 + 6), ld_u32(b0 + 2), ld_u32(c1 + 2));
  }
};

struct WQ5_1 {
  static constexpr int kBytes = 24, kOffset = 0;
  static constexpr bool kMin = true;
  static __m512i codes(const uint8_t* b0, const uint8_t* b1, bool two) {
    const uint8_t* c1 = two ? b1 : b0;
    return add_high_bits(nibbles_2x(b0 + 8, c1 + 8), ld_u32(b0 + 4), ld_u32(c1 + 4));
  }
};

// ---- activation formats: d at byte 0; Q8_1 has s at byte 2
struct AQ8_0 {
  static constexpr int kBytes = 34, kQs = 2;
  static constexpr bool kSum = false;
};
struct AQ8_1 {
  static constexpr int kBytes = 36, kQs = 4;
  static constexpr bool kSum = true;
};

constexpr int64_t kLaneRowMinT = 8;  // tokens from which the lane = row path pays for its repacking
constexpr int kWalkGroup = 16;       // blocks per reduction group in the row walk

inline __m512 f16x16(__m256i h) { return _mm512_cvtph_ps(h); }

// 16 fp16 values at base + i * stride (i < count), as f32; 0 beyond count. (Scalar loads: vpgatherdd
// measured 1.6x slower for the whole row walk.)
inline __m512 gather_f16(const uint8_t* base, int stride, int count) {
  if (count == 16) {
    auto h = [&](int i) { return (short)ld_u16(base + i * stride); };
    return f16x16(_mm256_setr_epi16(h(0), h(1), h(2), h(3), h(4), h(5), h(6), h(7), h(8), h(9), h(10), h(11), h(12),
                                    h(13), h(14), h(15)));
  }
  alignas(32) uint16_t v[16] = {0};
  for (int i = 0; i < count; ++i) v[i] = ld_u16(base + i * stride);
  return f16x16(_mm256_load_si256((const __m256i*)v));
}

// 8 fp16 values at base + i * stride (i < count), as f32; 0 beyond count.
inline __m256 gather_f16x8(const uint8_t* base, int stride, int count) {
  if (count == 8) {
    auto h = [&](int i) { return (short)ld_u16(base + i * stride); };
    return _mm256_cvtph_ps(_mm_setr_epi16(h(0), h(1), h(2), h(3), h(4), h(5), h(6), h(7)));
  }
  alignas(16) uint16_t v[8] = {0};
  for (int i = 0; i < count; ++i) v[i] = ld_u16(base + i * stride);
  return _mm256_cvtph_ps(_mm_load_si128((const __m128i*)v));
}

// The 8 fp16 scales at byte 0 of 8 consecutive 18- or 34-byte blocks starting at wb, as f32 (other
// sizes: gather_f16x8). Word permutes of whole cache lines (the bytes are in L1 anyway: the codes are
// read from them) instead of 8 scalar loads and inserts; reads 128 (18-byte blocks) or 256 bytes (34),
// within the 8 blocks.
template <int kBytes>
__attribute__((always_inline)) inline __m256 scales8(const uint8_t* wb) {
  static_assert(kBytes % 2 == 0);
  if constexpr (kBytes == 18) {
    const __m512i idx = _mm512_castsi128_si512(_mm_setr_epi16(0, 9, 18, 27, 36, 45, 54, 63));
    const __m512i d = _mm512_permutex2var_epi16(_mm512_loadu_si512(wb), idx, _mm512_loadu_si512(wb + 64));
    return _mm256_cvtph_ps(_mm512_castsi512_si128(d));
  } else if constexpr (kBytes == 34) {
    // blocks 0..3 at words 0, 17, 34, 51 of bytes [0, 128); blocks 4..7 at words 4, 21, 38, 55 of [128, 256)
    const __m512i idx = _mm512_castsi128_si512(_mm_setr_epi16(0, 17, 34, 51, 4, 21, 38, 55));
    const __m512i lo = _mm512_permutex2var_epi16(_mm512_loadu_si512(wb), idx, _mm512_loadu_si512(wb + 64));
    const __m512i hi = _mm512_permutex2var_epi16(_mm512_loadu_si512(wb + 128), idx, _mm512_loadu_si512(wb + 192));
    return _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_mask_mov_epi16(lo, 0xF0, hi)));
  } else {
    return gather_f16x8(wb, kBytes, 8);
  }
}

// ================================================================ row walk

// Activations for the row walk, per column: nsteps steps of [q 64 B | corr 64 B] (two blocks), then
// ngroups groups of [dx 16 f32 | sx 16 f32 (Q8_1 only)].
template <class W, class A>
struct WalkX {
  static constexpr size_t kGroupBytes = A::kSum ? 128 : 64;
  static int64_t steps(int64_t nb) { return (nb + 1) / 2; }
  static int64_t groups(int64_t nb) { return (nb + kWalkGroup - 1) / kWalkGroup; }
  static size_t col_bytes(int64_t nb) { return (size_t)steps(nb) * 128 + (size_t)groups(nb) * kGroupBytes; }

  static void pack(const uint8_t* x, size_t x_row_bytes, int64_t cols, int64_t nb, uint8_t* dst) {
    const __m512i zero = _mm512_setzero_si512();
    for (int64_t c = 0; c < cols; ++c) {
      const uint8_t* col = x + c * x_row_bytes;
      uint8_t* p = dst + c * col_bytes(nb);
      for (int64_t s = 0; s < steps(nb); ++s, p += 128) {
        const uint8_t* b0 = col + 2 * s * A::kBytes;
        const __m512i q = 2 * s + 1 < nb ? load_2x256(b0 + A::kQs, b0 + A::kBytes + A::kQs) : load_1x256(b0 + A::kQs);
        __m512i corr = zero;
        if constexpr (W::kOffset != 0)
          corr = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, _mm512_set1_epi8((char)W::kOffset), q));
        _mm512_store_si512(p, q);
        _mm512_store_si512(p + 64, corr);
      }
      for (int64_t g = 0; g < groups(nb); ++g, p += kGroupBytes) {
        const int cnt = (int)std::min<int64_t>(kWalkGroup, nb - g * kWalkGroup);
        const uint8_t* b0 = col + g * kWalkGroup * A::kBytes;
        _mm512_store_ps(p, gather_f16(b0, A::kBytes, cnt));
        if constexpr (A::kSum) _mm512_store_ps(p + 64, gather_f16(b0 + 2, A::kBytes, cnt));
      }
    }
  }
};

// v[s] (s < S, S = 8 or 4): lanes 0..7 = partial sums of block 2s, lanes 8..15 = block 2s+1. Returns
// lane b = block b (b < 2S).
template <int S>
__attribute__((always_inline)) inline __m512i reduce_blocks(const __m512i* v) {
  static_assert(S == 8 || S == 4);
  auto combine = [](__m512i a, __m512i b, __m512i lo, __m512i hi) __attribute__((always_inline)) {
    return _mm512_add_epi32(_mm512_permutex2var_epi32(a, lo, b), _mm512_permutex2var_epi32(a, hi, b));
  };
  const __m512i l1 = _mm512_setr_epi32(0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27);
  const __m512i h1 = _mm512_setr_epi32(4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
  const __m512i l2 = _mm512_setr_epi32(0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29);
  const __m512i h2 = _mm512_setr_epi32(2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31);
  const __m512i l3 = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i h3 = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512i u0 = combine(v[0], v[1], l1, h1), u1 = combine(v[2], v[3], l1, h1);
  if constexpr (S == 4) {
    const __m512i w = combine(u0, u1, l2, h2);
    return combine(w, w, l3, h3);
  } else {
    const __m512i u2 = combine(v[4], v[5], l1, h1), u3 = combine(v[6], v[7], l1, h1);
    return combine(combine(u0, u1, l2, h2), combine(u2, u3, l2, h2), l3, h3);
  }
}

// One group of 16 blocks (kFull) or the last, partial one (cnt < 16) of walk_row. acc: lane j =
// chain j; blocks 16g + i go to chain i mod 4 (16g is a multiple of 4).
template <class W, class A, int C, bool kFull>
__attribute__((always_inline)) inline void walk_group(int64_t g, int cnt, const uint8_t* wb, const uint8_t* xw,
                                                      size_t xb, size_t steps_bytes, __m128 acc[C]) {
  auto has = [&](int block) { return kFull || block < cnt; };
  __m512i codes[8];
  unroll<8>([&](auto s) __attribute__((always_inline)) {
    if (has(2 * s)) codes[s] = W::codes(wb + 2 * s * W::kBytes, wb + (2 * s + 1) * W::kBytes, has(2 * s + 1));
  });
  const __m512 dw = gather_f16(wb, W::kBytes, kFull ? 16 : cnt);
  __m512 mw;
  if constexpr (W::kMin) mw = gather_f16(wb + 2, W::kBytes, kFull ? 16 : cnt);
  unroll<C>([&](auto c) __attribute__((always_inline)) {
    const uint8_t* xs = xw + c * xb + g * (kWalkGroup / 2) * 128;
    __m512i v[8];
    unroll<8>([&](auto s) __attribute__((always_inline)) {
      v[s] = has(2 * s) ? _mm512_dpbusd_epi32(_mm512_load_si512(xs + 128 * s + 64), codes[s],
                                              _mm512_load_si512(xs + 128 * s))
                        : _mm512_setzero_si512();
    });
    const __m512 f = _mm512_cvtepi32_ps(reduce_blocks<8>(v));
    const uint8_t* xg = xw + c * xb + steps_bytes + g * WalkX<W, A>::kGroupBytes;
    const __m512 sv = _mm512_mul_ps(dw, _mm512_load_ps(xg));
    __m512 sx;
    if constexpr (W::kMin) sx = _mm512_load_ps(xg + 64);
    unroll<4>([&](auto qc) __attribute__((always_inline)) {  // blocks 4q .. 4q+3 of the group
      constexpr int q = decltype(qc)::value;
      if (has(4 * q)) {
        const __mmask8 m = kFull ? 0xF : (__mmask8)((1u << std::min(cnt - 4 * q, 4)) - 1);
        acc[c] = _mm_mask3_fmadd_ps(_mm512_extractf32x4_ps(f, q), _mm512_extractf32x4_ps(sv, q), acc[c], m);
        if constexpr (W::kMin)
          acc[c] = _mm_mask3_fmadd_ps(_mm512_extractf32x4_ps(mw, q), _mm512_extractf32x4_ps(sx, q), acc[c], m);
      }
    });
  });
}

// out[c] = dot(W row, column c) for C columns packed by WalkX (column stride xb).
template <class W, class A, int C>
void walk_row(int64_t nb, const uint8_t* row, const uint8_t* xw, size_t xb, float* out, int64_t ldo) {
  __m128 acc[C];
  unroll<C>([&](auto c) { acc[c] = _mm_setzero_ps(); });
  const size_t steps_bytes = (size_t)WalkX<W, A>::steps(nb) * 128;
  const int64_t full = nb / kWalkGroup;
  for (int64_t g = 0; g < full; ++g)
    walk_group<W, A, C, true>(g, kWalkGroup, row + g * kWalkGroup * W::kBytes, xw, xb, steps_bytes, acc);
  if (full * kWalkGroup < nb)
    walk_group<W, A, C, false>(full, (int)(nb - full * kWalkGroup), row + full * kWalkGroup * W::kBytes, xw, xb,
                               steps_bytes, acc);
  unroll<C>([&](auto c) {  // (a0 + a2) + (a1 + a3)
    const __m128 s2 = _mm_add_ps(acc[c], _mm_movehl_ps(acc[c], acc[c]));
    out[c * ldo] = _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
  });
}

// T = 1: R rows `step` rows apart advance together one 2-block step at a time, sharing the activation
// loads, in groups of 8 blocks (v[R][4] fills 16 registers at R = 4). Rows interleave every 2 blocks,
// so the R streams are read in short bursts (tried: each row's whole 16-block group in turn, which for
// Q8_0's 544-byte groups read slower than one stream). Same contract: exact per-block int32 sums, then
// per block, in order, fma into chain b mod 4.
template <class W, class A, int R, bool kFull>
__attribute__((always_inline)) inline void walk_group8(int64_t g, int cnt, const uint8_t* const wb[R],
                                                       const uint8_t* xw, size_t steps_bytes, __m128 acc[R]) {
  auto has = [&](int block) { return kFull || block < cnt; };
  __m512i v[R][4];
  unroll<4>([&](auto s) __attribute__((always_inline)) {
    if (has(2 * s)) {
      const uint8_t* xs = xw + (4 * g + s) * 128;
      const __m512i xq = _mm512_load_si512(xs), corr = _mm512_load_si512(xs + 64);
      unroll<R>([&](auto r) __attribute__((always_inline)) {
        const uint8_t* b0 = wb[r] + 2 * s * W::kBytes;
        v[r][s] = _mm512_dpbusd_epi32(corr, W::codes(b0, b0 + W::kBytes, has(2 * s + 1)), xq);
      });
    } else {
      unroll<R>([&](auto r) __attribute__((always_inline)) { v[r][s] = _mm512_setzero_si512(); });
    }
  });
  const uint8_t* xg = xw + steps_bytes + (g / 2) * WalkX<W, A>::kGroupBytes + (g % 2) * 32;
  const __m256 dx = _mm256_load_ps((const float*)xg);
  __m256 sx;
  if constexpr (W::kMin) sx = _mm256_load_ps((const float*)(xg + 64));
  unroll<R>([&](auto r) __attribute__((always_inline)) {
    const __m256 f = _mm512_castps512_ps256(_mm512_cvtepi32_ps(reduce_blocks<4>(v[r])));  // lanes 0..7
    const __m256 dw = kFull ? scales8<W::kBytes>(wb[r]) : gather_f16x8(wb[r], W::kBytes, cnt);
    const __m256 sv = _mm256_mul_ps(dw, dx);
    __m256 mw;
    if constexpr (W::kMin) mw = gather_f16x8(wb[r] + 2, W::kBytes, kFull ? 8 : cnt);
    unroll<2>([&](auto qc) __attribute__((always_inline)) {
      constexpr int q = decltype(qc)::value;
      if (has(4 * q)) {
        const __mmask8 m = kFull ? 0xF : (__mmask8)((1u << std::min(cnt - 4 * q, 4)) - 1);
        acc[r] = _mm_mask3_fmadd_ps(_mm256_extractf128_ps(f, q), _mm256_extractf128_ps(sv, q), acc[r], m);
        if constexpr (W::kMin)
          acc[r] = _mm_mask3_fmadd_ps(_mm256_extractf128_ps(mw, q), _mm256_extractf128_ps(sx, q), acc[r], m);
      }
    });
  });
}

template <class W, class A, int R>
void walk_rows_t1(int64_t nb, const uint8_t* row, size_t row_bytes, int64_t step, const uint8_t* xw, float* out) {
  __m128 acc[R];
  unroll<R>([&](auto r) { acc[r] = _mm_setzero_ps(); });
  const size_t steps_bytes = (size_t)WalkX<W, A>::steps(nb) * 128;
  const int64_t full = nb / 8;
  const uint8_t* wb[R];
  auto at = [&](int64_t g) {
    unroll<R>([&](auto r) { wb[r] = row + (size_t)(r * step) * row_bytes + g * 8 * W::kBytes; });
  };
  for (int64_t g = 0; g < full; ++g) {
    at(g);
    walk_group8<W, A, R, true>(g, 8, wb, xw, steps_bytes, acc);
  }
  if (full * 8 < nb) {
    at(full);
    walk_group8<W, A, R, false>(full, (int)(nb - full * 8), wb, xw, steps_bytes, acc);
  }
  unroll<R>([&](auto r) {  // (a0 + a2) + (a1 + a3)
    const __m128 s2 = _mm_add_ps(acc[r], _mm_movehl_ps(acc[r], acc[r]));
    out[r * step] = _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
  });
}

// T = 1: the range is cut into 4 slices of q rows and row j of every slice is done at once
// (walk_rows_t1), so W is read as 4 long sequential streams in short bursts (one stream leaves memory-level
// parallelism unused; 4 adjacent rows would be 4 short streams the prefetcher does not follow, see the
// K-quant walk). T > 1: one row at a time, all columns per row. Measured (cold 2048 x 5632, 1 thread,
// best of 3): Q8_0 0.42 -> 0.37 ms, Q5_0 0.35 -> 0.29, Q4_0 0.28 -> 0.25; 1.1B tg48 at 2 threads, medians
// of 4 alternating rounds: Q8_0 36.7 -> 40.9 t/s, Q4_0 51.2 -> 58.9 (noisy phase). (Walking each row's
// whole 16-block group in turn instead, 4 rows apart, made Q8_0 slower: 544-byte bursts.)
template <class W, class A>
void gemm_walk(int64_t n, const uint8_t* w, size_t w_row_bytes, int64_t r0, int64_t r1, const uint8_t* x,
               size_t x_row_bytes, int64_t T, float* y, int64_t ldy) {
  thread_local std::vector<uint8_t> xbuf;
  const int64_t nb = n / 32;
  const size_t xb = WalkX<W, A>::col_bytes(nb);
  uint8_t* xw = grow(xbuf, (size_t)T * xb);
  WalkX<W, A>::pack(x, x_row_bytes, T, nb, xw);
  if (T == 1) {
    const int64_t q = (r1 - r0) / 4;
    for (int64_t j = r0; j < r0 + q; ++j) walk_rows_t1<W, A, 4>(nb, w + j * w_row_bytes, w_row_bytes, q, xw, y + j);
    for (int64_t r = r0 + 4 * q; r < r1; ++r) walk_rows_t1<W, A, 1>(nb, w + r * w_row_bytes, w_row_bytes, 0, xw, y + r);
    return;
  }
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w + r * w_row_bytes;
    for (int64_t c0 = 0; c0 < T; c0 += 4) {
      const uint8_t* xc = xw + c0 * xb;
      float* out = y + c0 * ldy + r;
      switch (std::min<int64_t>(4, T - c0)) {
        case 1: walk_row<W, A, 1>(nb, row, xc, xb, out, ldy); break;
        case 2: walk_row<W, A, 2>(nb, row, xc, xb, out, ldy); break;
        case 3: walk_row<W, A, 3>(nb, row, xc, xb, out, ldy); break;
        default: walk_row<W, A, 4>(nb, row, xc, xb, out, ldy); break;
      }
    }
  }
}

// ================================================================ lane = row

// Activations: per column, per block: [32 codes | dx f32 | corr i32 (-offset * sum) or sx f32].
constexpr size_t kLrXBlock = 40;

template <class W, class A>
void pack_lr_cols(const uint8_t* x, size_t x_row_bytes, int64_t cols, int64_t nb, uint8_t* dst) {
  for (int64_t c = 0; c < cols; ++c) {
    uint8_t* p = dst + c * nb * kLrXBlock;
    for (int64_t b = 0; b < nb; ++b, p += kLrXBlock) {
      const uint8_t* blk = x + c * x_row_bytes + b * A::kBytes;
      const __m256i q = _mm256_loadu_si256((const __m256i*)(blk + A::kQs));
      _mm256_storeu_si256((__m256i*)p, q);
      const float dx = _cvtsh_ss(ld_u16(blk));
      std::memcpy(p + 32, &dx, 4);
      if constexpr (A::kSum) {
        const float sx = _cvtsh_ss(ld_u16(blk + 2));
        std::memcpy(p + 36, &sx, 4);
      } else {
        const __m256i s4 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), q);
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(s4), _mm256_extracti128_si256(s4, 1));
        s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
        const int32_t corr = -W::kOffset * _mm_cvtsi128_si32(s);
        std::memcpy(p + 36, &corr, 4);
      }
    }
  }
}

// Weights: groups of 16 rows; per block: 8 registers of codes (register q, lane j = codes 4q..4q+3
// of row j), then dw (16 f32), then mw (16 f32, Q4_1/Q5_1).
template <class W>
struct LrRows {
  static constexpr size_t kBlockBytes = W::kMin ? 640 : 576;

  static void pack(const uint8_t* w, size_t w_row_bytes, int64_t rows, int64_t nb, uint8_t* dst) {
    for (int64_t g0 = 0; g0 < rows; g0 += 16) {
      const int cnt = (int)std::min<int64_t>(16, rows - g0);
      uint8_t* p = dst + (g0 / 16) * nb * kBlockBytes;
      for (int64_t b = 0; b < nb; ++b, p += kBlockBytes) {
        __m256i codes[16];
        alignas(64) float d[16] = {0}, m[16] = {0};
        for (int j = 0; j < 16; ++j) {
          if (j >= cnt) {
            codes[j] = _mm256_setzero_si256();
            continue;
          }
          const uint8_t* blk = w + (g0 + j) * w_row_bytes + b * W::kBytes;
          codes[j] = _mm512_castsi512_si256(W::codes(blk, blk, false));
          d[j] = _cvtsh_ss(ld_u16(blk));
          if constexpr (W::kMin) m[j] = _cvtsh_ss(ld_u16(blk + 2));
        }
        __m512i out[8];
        transpose_16x8(codes, out);
        for (int q = 0; q < 8; ++q) _mm512_store_si512(p + 64 * q, out[q]);
        _mm512_store_ps(p + 512, _mm512_load_ps(d));
        if constexpr (W::kMin) _mm512_store_ps(p + 576, _mm512_load_ps(m));
      }
    }
  }
};


// 16 rows (one packed group) x C columns (packed by pack_lr_cols, column stride xb); acc[c][j] = chain j.
template <class W, int C>
void lr_tile(int64_t nb, const uint8_t* wg, const uint8_t* xl, size_t xb, float* y, int64_t ldy, int rows) {
  __m512 acc[C][4];
  unroll<C>([&](auto c) { unroll<4>([&](auto j) { acc[c][j] = _mm512_setzero_ps(); }); });
  auto block = [&](int64_t b, auto chain) __attribute__((always_inline)) {
    const uint8_t* p = wg + b * LrRows<W>::kBlockBytes;
    __m512i wq[8];
    unroll<8>([&](auto q) { wq[q] = _mm512_load_si512(p + 64 * q); });
    unroll<C>([&](auto c) {
      const uint8_t* xp = xl + c * xb + b * kLrXBlock;
      __m512i isum = W::kMin ? _mm512_setzero_si512() : bcast_i32(xp + 36);
      unroll<8>([&](auto q) { isum = _mm512_dpbusd_epi32(isum, wq[q], bcast_i32(xp + 4 * q)); });
      const __m512 s = _mm512_mul_ps(_mm512_load_ps(p + 512), _mm512_set1_ps(ld_f32(xp + 32)));
      acc[c][chain] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), s, acc[c][chain]);
      if constexpr (W::kMin)
        acc[c][chain] = _mm512_fmadd_ps(_mm512_load_ps(p + 576), _mm512_set1_ps(ld_f32(xp + 36)), acc[c][chain]);
    });
  };
  int64_t b = 0;
  for (; b + 4 <= nb; b += 4) unroll<4>([&](auto j) { block(b + j, j); });
  unroll<4>([&](auto j) {
    if (b + j < nb) block(b + j, j);
  });
  const __mmask16 k = (__mmask16)((1u << rows) - 1);
  unroll<C>([&](auto c) {
    const __m512* a = acc[c];
    _mm512_mask_storeu_ps(y + c * ldy, k, _mm512_add_ps(_mm512_add_ps(a[0], a[2]), _mm512_add_ps(a[1], a[3])));
  });
}

constexpr int kLrCols = 4;
constexpr size_t kLrPanelBytes = 512 * 1024;

template <class W, class A>
void gemm_lane_row(int64_t n, const uint8_t* w, size_t w_row_bytes, int64_t r0, int64_t r1, const uint8_t* x,
                   size_t x_row_bytes, int64_t T, float* y, int64_t ldy) {
  thread_local std::vector<uint8_t> xbuf, wbuf;
  const int64_t nb = n / 32;
  const size_t xb = (size_t)nb * kLrXBlock, gb = (size_t)nb * LrRows<W>::kBlockBytes;
  uint8_t* xl = grow(xbuf, (size_t)T * xb);
  pack_lr_cols<W, A>(x, x_row_bytes, T, nb, xl);
  const int64_t panel = 16 * std::clamp<int64_t>((int64_t)(kLrPanelBytes / gb), 1, 16);
  uint8_t* wl = grow(wbuf, (size_t)(panel / 16) * gb);
  for (int64_t p0 = r0; p0 < r1; p0 += panel) {
    const int64_t rows = std::min(panel, r1 - p0);
    LrRows<W>::pack(w + p0 * w_row_bytes, w_row_bytes, rows, nb, wl);
    for (int64_t t0 = 0; t0 < T; t0 += kLrCols) {
      for (int64_t g0 = 0; g0 < rows; g0 += 16) {
        const uint8_t* wg = wl + (g0 / 16) * gb;
        const uint8_t* xc = xl + t0 * xb;
        float* out = y + t0 * ldy + p0 + g0;
        const int valid = (int)std::min<int64_t>(16, rows - g0);
        switch (std::min<int64_t>(kLrCols, T - t0)) {
          case 1: lr_tile<W, 1>(nb, wg, xc, xb, out, ldy, valid); break;
          case 2: lr_tile<W, 2>(nb, wg, xc, xb, out, ldy, valid); break;
          case 3: lr_tile<W, 3>(nb, wg, xc, xb, out, ldy, valid); break;
          default: lr_tile<W, 4>(nb, wg, xc, xb, out, ldy, valid); break;
        }
      }
    }
  }
}

template <class W, class A>
void gemm_legacy(int64_t n, const void* w, size_t wrb, int64_t r0, int64_t r1, const void* x, size_t xrb, int64_t T,
                 float* y, int64_t ldy) {
  if (r0 >= r1 || T <= 0) return;
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* xbp = static_cast<const uint8_t*>(x);
  if (T < kLaneRowMinT) {
    gemm_walk<W, A>(n, wb, wrb, r0, r1, xbp, xrb, T, y, ldy);
  } else {
    gemm_lane_row<W, A>(n, wb, wrb, r0, r1, xbp, xrb, T, y, ldy);
  }
}

template <class W, class A>
void vec_dot_legacy(int64_t n, float* s, const void* x, const void* y) {
  gemm_walk<W, A>(n, static_cast<const uint8_t*>(x), 0, 0, 1, static_cast<const uint8_t*>(y), 0, 1, s, 1);
}

}  // namespace

void vec_dot_q8_0(int64_t n, float* s, const void* x, const void* y) { vec_dot_legacy<WQ8_0, AQ8_0>(n, s, x, y); }
void vec_dot_q4_0(int64_t n, float* s, const void* x, const void* y) { vec_dot_legacy<WQ4_0, AQ8_0>(n, s, x, y); }
void vec_dot_q5_0(int64_t n, float* s, const void* x, const void* y) { vec_dot_legacy<WQ5_0, AQ8_0>(n, s, x, y); }
void vec_dot_q4_1(int64_t n, float* s, const void* x, const void* y) { vec_dot_legacy<WQ4_1, AQ8_1>(n, s, x, y); }
void vec_dot_q5_1(int64_t n, float* s, const void* x, const void* y) { vec_dot_legacy<WQ5_1, AQ8_1>(n, s, x, y); }
void vec_dot_iq4_nl(int64_t n, float* s, const void* x, const void* y) {
  vec_dot_legacy<WIQ4_NL, AQ8_0>(n, s, x, y);
}

void gemm_q8_0(int64_t n, const void* w, size_t wrb, int64_t r0, int64_t r1, const void* x, size_t xrb, int64_t T,
               float* y, int64_t ldy) {
  gemm_legacy<WQ8_0, AQ8_0>(n, w, wrb, r0, r1, x, xrb, T, y, ldy);
}
void gemm_q4_0(int64_t n, const void* w, size_t wrb, int64_t r0, int64_t r1, const void* x, size_t xrb, int64_t T,
               float* y, int64_t ldy) {
  gemm_legacy<WQ4_0, AQ8_0>(n, w, wrb, r0, r1, x, xrb, T, y, ldy);
}
void gemm_q5_0(int64_t n, const void* w, size_t wrb, int64_t r0, int64_t r1, const void* x, size_t xrb, int64_t T,
               float* y, int64_t ldy) {
  gemm_legacy<WQ5_0, AQ8_0>(n, w, wrb, r0, r1, x, xrb, T, y, ldy);
}
void gemm_q4_1(int64_t n, const void* w, size_t wrb, int64_t r0, int64_t r1, const void* x, size_t xrb, int64_t T,
               float* y, int64_t ldy) {
  gemm_legacy<WQ4_1, AQ8_1>(n, w, wrb, r0, r1, x, xrb, T, y, ldy);
}
void gemm_q5_1(int64_t n, const void* w, size_t wrb, int64_t r0, int64_t r1, const void* x, size_t xrb, int64_t T,
               float* y, int64_t ldy) {
  gemm_legacy<WQ5_1, AQ8_1>(n, w, wrb, r0, r1, x, xrb, T, y, ldy);
}
void gemm_iq4_nl(int64_t n, const void* w, size_t wrb, int64_t r0, int64_t r1, const void* x, size_t xrb,
                 int64_t T, float* y, int64_t ldy) {
  gemm_legacy<WIQ4_NL, AQ8_0>(n, w, wrb, r0, r1, x, xrb, T, y, ldy);
}

}  // namespace frugal::avx512
