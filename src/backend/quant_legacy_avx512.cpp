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

  // What one step (two blocks) needs from a weight row / an activation column. The packed layouts
  // store exactly these vectors, so packed and unpacked tiles do identical arithmetic.
  struct RowStep {
    __m512i q;
    __m512 d, m;  // m: Q4_1/Q5_1 min in lanes 0 and 8
  };
  struct ColStep {
    __m512i q, corr;  // corr: -offset * sum4(x), the starting value of every integer sum
    __m512 d, s;      // s: Q8_1 block sums (Q4_1/Q5_1 only)
  };
  static constexpr size_t kRowStepBytes = W::kMin ? 192 : 128;
  static constexpr size_t kColStepBytes = 192;

  static RowStep row_step(const uint8_t* row, int64_t ib, bool two) {
    const uint8_t* b0 = row + ib * W::kBytes;
    const uint8_t* b1 = b0 + W::kBytes;
    RowStep st;
    st.q = W::codes(b0, b1, two);
    st.d = half_pair(ld_u16(b0), two ? ld_u16(b1) : 0);
    if constexpr (W::kMin) st.m = half_pair_lane0(ld_u16(b0 + 2), two ? ld_u16(b1 + 2) : 0);
    return st;
  }

  static ColStep col_step(const uint8_t* col, int64_t ib, bool two) {
    const uint8_t* b0 = col + ib * A::kBytes;
    const uint8_t* b1 = b0 + A::kBytes;
    ColStep st;
    st.q = two ? load_2x256(b0 + A::kQs, b1 + A::kQs) : load_1x256(b0 + A::kQs);
    st.d = half_pair(ld_u16(b0), two ? ld_u16(b1) : 0);
    st.corr = _mm512_setzero_si512();
    if constexpr (W::kOffset != 0)
      st.corr = _mm512_sub_epi32(st.corr, _mm512_dpbusd_epi32(st.corr, _mm512_set1_epi8((char)W::kOffset), st.q));
    if constexpr (W::kMin) st.s = half_pair(ld_u16(b0 + 2), two ? ld_u16(b1 + 2) : 0);
    return st;
  }

  static constexpr int64_t kStepElems = 64;
  static int64_t steps(int64_t n) { return (n / 32 + 1) / 2; }

  static void pack_rows(const uint8_t* w, size_t w_row_bytes, int64_t rows, int64_t n, uint8_t* dst) {
    const int64_t nb = n / 32;
    uint8_t* p = dst;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t s = 0; s < steps(n); ++s, p += kRowStepBytes) {
        const RowStep st = row_step(w + r * w_row_bytes, 2 * s, 2 * s + 1 < nb);
        _mm512_store_si512(p, st.q);
        _mm512_store_ps(p + 64, st.d);
        if constexpr (W::kMin) _mm512_store_ps(p + 128, st.m);
      }
  }

  // Steps covering elements [k0, k0 + kn) of each column (k0 a multiple of kStepElems).
  static void pack_cols(const uint8_t* x, size_t x_row_bytes, int64_t cols, int64_t n, int64_t k0, int64_t kn,
                        uint8_t* dst) {
    const int64_t nb = n / 32, s0 = k0 / kStepElems, s1 = s0 + steps(kn);
    uint8_t* p = dst;
    for (int64_t c = 0; c < cols; ++c)
      for (int64_t s = s0; s < s1; ++s, p += kColStepBytes) {
        const ColStep st = col_step(x + c * x_row_bytes, 2 * s, 2 * s + 1 < nb);
        _mm512_store_si512(p, st.q);
        if constexpr (W::kMin) {
          _mm512_store_ps(p + 64, st.s);
        } else {
          _mm512_store_si512(p + 64, st.corr);
        }
        _mm512_store_ps(p + 128, st.d);
      }
  }

  // kPackedW / kPackedX: a.w / a.x point at pack_rows / pack_cols output (row stride a.w_row_bytes = packed row
  // bytes, column stride a.x_row_bytes = packed column bytes).
  template <int R, int C, bool kPackedW, bool kPackedX>
  static void tile_impl(const TileArgs& a) {
    constexpr bool kPacked = kPackedW && kPackedX;  // full packed path: K chunks through a.acc
    const int64_t nb = a.n / 32;
    __m512 acc[R][C];
    unroll<R>([&](auto r) {
      unroll<C>([&](auto c) {
        acc[r][c] = kPacked && a.acc_in ? _mm512_load_ps(a.acc + (r * C + c) * 16) : _mm512_setzero_ps();
      });
    });

    auto step = [&](auto two_tag, int64_t ib) __attribute__((always_inline)) {
      constexpr bool kTwo = decltype(two_tag)::value;
      RowStep rs[R];
      unroll<R>([&](auto r) {
        if constexpr (kPackedW) {
          const uint8_t* p = a.w + r * a.w_row_bytes + (ib / 2) * kRowStepBytes;
          rs[r].q = _mm512_load_si512(p);
          rs[r].d = _mm512_load_ps(p + 64);
          if constexpr (W::kMin) rs[r].m = _mm512_load_ps(p + 128);
        } else {
          rs[r] = row_step(a.w + r * a.w_row_bytes, ib, kTwo);
        }
      });
      unroll<C>([&](auto c) {
        ColStep cs;
        if constexpr (kPackedX) {
          const uint8_t* p = a.x + c * a.x_row_bytes + (ib / 2) * kColStepBytes;
          cs.q = _mm512_load_si512(p);
          if constexpr (W::kMin) {
            cs.s = _mm512_load_ps(p + 64);
            cs.corr = _mm512_setzero_si512();
          } else {
            cs.corr = _mm512_load_si512(p + 64);
          }
          cs.d = _mm512_load_ps(p + 128);
        } else {
          cs = col_step(a.x + c * a.x_row_bytes, ib, kTwo);
        }
        unroll<R>([&](auto r) {
          const __m512i isum = _mm512_dpbusd_epi32(cs.corr, rs[r].q, cs.q);
          acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(rs[r].d, cs.d), acc[r][c]);
          if constexpr (W::kMin) acc[r][c] = _mm512_fmadd_ps(rs[r].m, cs.s, acc[r][c]);
        });
      });
    };
    int64_t ib = 0;
    for (; ib + 2 <= nb; ib += 2) step(std::true_type{}, ib);
    if (ib < nb) step(std::false_type{}, ib);

    if (kPacked && a.acc_out) {
      unroll<R>([&](auto r) { unroll<C>([&](auto c) { _mm512_store_ps(a.acc + (r * C + c) * 16, acc[r][c]); }); });
      return;
    }
    unroll<R>([&](auto r) { unroll<C>([&](auto c) { a.y[c * a.ldy + r] = hsum512(acc[r][c]); }); });
  }

  template <int R, int C>
  static void tile(const TileArgs& a) {
    tile_impl<R, C, false, false>(a);
  }
  template <int R, int C>
  static void tile_packed(const TileArgs& a) {
    tile_impl<R, C, true, true>(a);
  }
  template <int R, int C>
  static void tile_xpacked(const TileArgs& a) {
    tile_impl<R, C, false, true>(a);
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
