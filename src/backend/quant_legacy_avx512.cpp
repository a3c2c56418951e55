// Legacy 32-element block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) x Q8_0/Q8_1 activations on AVX-512
// VNNI. Scalar twins: quant_ref.cpp (vec_dot_q*_q8_*).
//
// One step handles two blocks per register:
//
//   zmm bytes  0..31 = block b  (32 codes)     lanes 0..7  = int32 sums of 4 products, block b
//   zmm bytes 32..63 = block b+1               lanes 8..15 = block b+1
//
// Weight codes are made unsigned (Q8_0: xor 0x80 = w+128; Q4_0: nibble = w+8; Q5_0: w+16) so that
// vpdpbusd (u8 x s8) applies; the offset is removed exactly in integers by starting each sum at
// -offset * sum4(x), computed once per activation block and reused for every weight row. Then per
// block, in float: acc += float(isum_lane) * (d_w * d_x); Q4_1/Q5_1 add m_w * s_x once per block
// (lanes 0 and 8). One accumulator per (row, column), lanes summed at the end (hsum512).
// GCC 12 reports false -Wmaybe-uninitialized inside the AVX-512 intrinsic headers (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <type_traits>

#include "backend/quant_avx512_util.h"
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
};
struct AQ8_1 {
  static constexpr int kBytes = 36, kQs = 4;
};

template <class W, class A, int kR, int kC>
struct LegacyKernel {
  static constexpr int kRows = kR, kCols = kC;

  template <int R, int C>
  static void tile(const TileArgs& a) {
    const int64_t nb = a.n / 32;
    __m512 acc[R][C];
    unroll<R>([&](auto r) { unroll<C>([&](auto c) { acc[r][c] = _mm512_setzero_ps(); }); });

    auto step = [&](auto two_tag, int64_t ib) {
      constexpr bool kTwo = decltype(two_tag)::value;
      __m512i wq[R];
      __m512 wd[R], wm[R];
      unroll<R>([&](auto r) {
        const uint8_t* b0 = a.w + r * a.w_row_bytes + ib * W::kBytes;
        const uint8_t* b1 = b0 + W::kBytes;
        wq[r] = W::codes(b0, b1, kTwo);
        wd[r] = half_pair(ld_u16(b0), kTwo ? ld_u16(b1) : 0);
        if constexpr (W::kMin) wm[r] = half_pair_lane0(ld_u16(b0 + 2), kTwo ? ld_u16(b1 + 2) : 0);
      });
      unroll<C>([&](auto c) {
        const uint8_t* b0 = a.x + c * a.x_row_bytes + ib * A::kBytes;
        const uint8_t* b1 = b0 + A::kBytes;
        const __m512i xq = kTwo ? load_2x256(b0 + A::kQs, b1 + A::kQs) : load_1x256(b0 + A::kQs);
        const __m512 xd = half_pair(ld_u16(b0), kTwo ? ld_u16(b1) : 0);
        __m512i corr = _mm512_setzero_si512();
        if constexpr (W::kOffset != 0)
          corr = _mm512_sub_epi32(corr, _mm512_dpbusd_epi32(corr, _mm512_set1_epi8((char)W::kOffset), xq));
        __m512 xs;
        if constexpr (W::kMin) xs = half_pair(ld_u16(b0 + 2), kTwo ? ld_u16(b1 + 2) : 0);
        unroll<R>([&](auto r) {
          const __m512i isum = _mm512_dpbusd_epi32(corr, wq[r], xq);
          acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(wd[r], xd), acc[r][c]);
          if constexpr (W::kMin) acc[r][c] = _mm512_fmadd_ps(wm[r], xs, acc[r][c]);
        });
      });
    };
    int64_t ib = 0;
    for (; ib + 2 <= nb; ib += 2) step(std::true_type{}, ib);
    if (ib < nb) step(std::false_type{}, ib);

    unroll<R>([&](auto r) { unroll<C>([&](auto c) { a.y[c * a.ldy + r] = hsum512(acc[r][c]); }); });
  }
};

using KQ8_0 = LegacyKernel<WQ8_0, AQ8_0, 4, 4>;
using KQ4_0 = LegacyKernel<WQ4_0, AQ8_0, 4, 4>;
using KQ5_0 = LegacyKernel<WQ5_0, AQ8_0, 4, 4>;
using KQ4_1 = LegacyKernel<WQ4_1, AQ8_1, 4, 3>;
using KQ5_1 = LegacyKernel<WQ5_1, AQ8_1, 4, 3>;

}  // namespace

void vec_dot_q8_0(int64_t n, float* s, const void* x, const void* y) { vec_dot_tile<KQ8_0>(n, s, x, y); }
void vec_dot_q4_0(int64_t n, float* s, const void* x, const void* y) { vec_dot_tile<KQ4_0>(n, s, x, y); }
void vec_dot_q5_0(int64_t n, float* s, const void* x, const void* y) { vec_dot_tile<KQ5_0>(n, s, x, y); }
void vec_dot_q4_1(int64_t n, float* s, const void* x, const void* y) { vec_dot_tile<KQ4_1>(n, s, x, y); }
void vec_dot_q5_1(int64_t n, float* s, const void* x, const void* y) { vec_dot_tile<KQ5_1>(n, s, x, y); }

void gemm_q8_0(int64_t n, const void* w, size_t wrb, int64_t r0, int64_t r1, const void* x, size_t xrb, int64_t T,
               float* y, int64_t ldy) {
  gemm_tiles<KQ8_0>(n, w, wrb, r0, r1, x, xrb, T, y, ldy);
}
void gemm_q4_0(int64_t n, const void* w, size_t wrb, int64_t r0, int64_t r1, const void* x, size_t xrb, int64_t T,
               float* y, int64_t ldy) {
  gemm_tiles<KQ4_0>(n, w, wrb, r0, r1, x, xrb, T, y, ldy);
}
void gemm_q5_0(int64_t n, const void* w, size_t wrb, int64_t r0, int64_t r1, const void* x, size_t xrb, int64_t T,
               float* y, int64_t ldy) {
  gemm_tiles<KQ5_0>(n, w, wrb, r0, r1, x, xrb, T, y, ldy);
}
void gemm_q4_1(int64_t n, const void* w, size_t wrb, int64_t r0, int64_t r1, const void* x, size_t xrb, int64_t T,
               float* y, int64_t ldy) {
  gemm_tiles<KQ4_1>(n, w, wrb, r0, r1, x, xrb, T, y, ldy);
}
void gemm_q5_1(int64_t n, const void* w, size_t wrb, int64_t r0, int64_t r1, const void* x, size_t xrb, int64_t T,
               float* y, int64_t ldy) {
  gemm_tiles<KQ5_1>(n, w, wrb, r0, r1, x, xrb, T, y, ldy);
}

}  // namespace frugal::avx512
