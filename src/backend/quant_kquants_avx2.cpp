// K-quants (Q4_K, Q5_K, Q6_K) x Q8_K activations on AVX2. Scalar twins: quant_ref_k.cpp.
//
// A super-block is eight 32-element registers j = 0..7 in element order:
//   Q4_K/Q5_K: register j = sub-block j: low (j even) or high (j odd) nibbles of qs[32*(j/2) ..], Q5_K
//              adding 16 where qh bit j is set; one 6-bit scale for the whole register.
//   Q6_K:      register j = groups 2j (bytes 0..15) and 2j+1 (bytes 16..31); codes 0..63.
// Per register: vpmaddubsw (codes x x -> int16 pairs, no saturation: 63*127*2 < 2^15; Q6_K subtracts
// 32 * (x pair sums) in int16), then vpmaddwd with the int16 scale -> int32, summed per super-block.
// Per super-block, in float: acc += float(isum_lane) * (d_w * d_x); Q4_K/Q5_K subtract
// float(sum of min_s * bsums) * (dmin_w * d_x). One accumulator per (row, column), hsum256 at the end.
#include "backend/quant_avx2_util.h"
#include "backend/quant_gemm.h"
#include "backend/quant_kernels.h"

namespace frugal::avx2 {
namespace {

constexpr int kQ4KBytes = 144, kQ5KBytes = 176, kQ6KBytes = 210, kQ8KBytes = 292;
constexpr int kQ8KQs = 4, kQ8KBsums = 260;

// 12 packed bytes -> bytes [sc0..sc7, m0..m7] in both 128-bit lanes.
inline __m256i unpack_k_scales(const uint8_t* q) {
  const uint32_t u0 = ld_u32(q), u1 = ld_u32(q + 4), u2 = ld_u32(q + 8);
  constexpr uint32_t k6 = 0x3f3f3f3f, k4 = 0x0f0f0f0f, k2 = 0x03030303;
  const uint32_t sc_lo = u0 & k6, m_lo = u1 & k6;
  const uint32_t sc_hi = (u2 & k4) | (((u0 >> 6) & k2) << 4);
  const uint32_t m_hi = ((u2 >> 4) & k4) | (((u1 >> 6) & k2) << 4);
  return _mm256_broadcastsi128_si256(_mm_set_epi32((int)m_hi, (int)m_lo, (int)sc_hi, (int)sc_lo));
}

// vpshufb pattern making every int16 lane = byte `lo` (lower 128) / byte `hi` (upper 128), zero-extended.
inline __m256i u8_to_i16_pattern(int lo, int hi) {
  const int16_t a = (int16_t)(0x8000 | lo), b = (int16_t)(0x8000 | hi);  // high byte index 0x80 -> 0
  return _mm256_setr_epi16(a, a, a, a, a, a, a, a, b, b, b, b, b, b, b, b);
}

template <bool kFive, int kR, int kC>
struct KxKernel {  // Q4_K (kFive = false) and Q5_K
  // No kDecodeSlices (quant_gemm.h): reading 2 rows from 2 slices at T = 1 was slower for Q4_K (cold
  // 2048 x 5632, 1 thread: 0.36 -> 0.41-0.49 ms) and no faster for Q5_K.
  static constexpr int kRows = kR, kCols = kC;
  static constexpr int kBytes = kFive ? kQ5KBytes : kQ4KBytes;
  static constexpr int kQs = kFive ? 48 : 16;

  template <int R, int C>
  static void tile(const TileArgs& a) {
    const int64_t nsb = a.n / 256;
    __m256 acc[R][C];
    unroll<R>([&](auto r) { unroll<C>([&](auto c) { acc[r][c] = _mm256_setzero_ps(); }); });
    // mins as int16 [m0,m0,m1,m1,m2,m2,m3,m3 | m4,m4,...,m7,m7] (bytes 8.. of the unpacked scales)
    const __m256i min_pat = _mm256_setr_epi8(8, -128, 8, -128, 9, -128, 9, -128, 10, -128, 10, -128, 11, -128, 11,
                                             -128, 12, -128, 12, -128, 13, -128, 13, -128, 14, -128, 14, -128, 15,
                                             -128, 15, -128);
    for (int64_t i = 0; i < nsb; ++i) {
      const uint8_t* wb[R];
      __m256i sc[R];
      unroll<R>([&](auto r) {
        wb[r] = a.w + r * a.w_row_bytes + i * kBytes;
        sc[r] = unpack_k_scales(wb[r] + 4);
      });
      __m256i isum[R][C];
      unroll<R>([&](auto r) { unroll<C>([&](auto c) { isum[r][c] = _mm256_setzero_si256(); }); });
      unroll<8>([&](auto j) {
        constexpr int jj = decltype(j)::value;
        __m256i codes[R], scale[R];
        unroll<R>([&](auto r) {
          const __m256i q = load256(wb[r] + kQs + 32 * (jj / 2));
          codes[r] = _mm256_and_si256(jj % 2 ? _mm256_srli_epi16(q, 4) : q, _mm256_set1_epi8(0x0F));
          if constexpr (kFive) {
            const __m256i qh = load256(wb[r] + 16);
            const __m256i hb = jj <= 4 ? _mm256_slli_epi16(qh, 4 - jj) : _mm256_srli_epi16(qh, jj - 4);
            codes[r] = _mm256_or_si256(codes[r], _mm256_and_si256(hb, _mm256_set1_epi8(0x10)));
          }
          scale[r] = _mm256_shuffle_epi8(sc[r], u8_to_i16_pattern(jj, jj));
        });
        unroll<C>([&](auto c) {
          const __m256i xv = load256(a.x + c * a.x_row_bytes + i * kQ8KBytes + kQ8KQs + 32 * jj);
          unroll<R>([&](auto r) {
            const __m256i p16 = _mm256_maddubs_epi16(codes[r], xv);
            isum[r][c] = _mm256_add_epi32(isum[r][c], _mm256_madd_epi16(p16, scale[r]));
          });
        });
      });
      unroll<C>([&](auto c) {
        const uint8_t* xb = a.x + c * a.x_row_bytes + i * kQ8KBytes;
        const float d8 = ld_f32(xb);
        const __m256i bsums = load256(xb + kQ8KBsums);
        unroll<R>([&](auto r) {
          const float d = f16_at(wb[r]) * d8, dmin = f16_at(wb[r] + 2) * d8;
          acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r][c]), _mm256_set1_ps(d), acc[r][c]);
          const __m256i mins = _mm256_madd_epi16(bsums, _mm256_shuffle_epi8(sc[r], min_pat));
          acc[r][c] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_set1_ps(dmin), acc[r][c]);
        });
      });
    }
    unroll<R>([&](auto r) { unroll<C>([&](auto c) { a.y[c * a.ldy + r] = hsum256(acc[r][c]); }); });
  }
};

template <int kR, int kC>
struct Q6Kernel {
  // kDecodeSlices (quant_gemm.h): T = 1 reads kR rows from kR slices of the range at once. Measured (cold
  // 2048 x 5632, 1 thread, 3 alternating runs): 0.53-0.59 -> 0.42-0.46 ms.
  static constexpr int kRows = kR, kCols = kC, kDecodeSlices = kR;

  template <int R, int C>
  static void tile(const TileArgs& a) {
    const int64_t nsb = a.n / 256;
    __m256 acc[R][C];
    unroll<R>([&](auto r) { unroll<C>([&](auto c) { acc[r][c] = _mm256_setzero_ps(); }); });
    for (int64_t i = 0; i < nsb; ++i) {
      const uint8_t* wb[R];
      __m256i sc[R];
      unroll<R>([&](auto r) {
        wb[r] = a.w + r * a.w_row_bytes + i * kQ6KBytes;
        sc[r] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)(wb[r] + 192)));
      });
      __m256i isum[R][C];
      unroll<R>([&](auto r) { unroll<C>([&](auto c) { isum[r][c] = _mm256_setzero_si256(); }); });
      unroll<8>([&](auto j) {
        constexpr int jj = decltype(j)::value, h = jj / 4, q = jj % 4;
        __m256i codes[R], scale[R];
        unroll<R>([&](auto r) {
          const __m256i L = load256(wb[r] + 64 * h + 32 * (q & 1));
          const __m256i lo = _mm256_and_si256(q >> 1 ? _mm256_srli_epi16(L, 4) : L, _mm256_set1_epi8(0x0F));
          const __m256i H = load256(wb[r] + 128 + 32 * h);
          const __m256i hb = q == 3 ? _mm256_srli_epi16(H, 2) : _mm256_slli_epi16(H, 4 - 2 * q);
          codes[r] = _mm256_or_si256(lo, _mm256_and_si256(hb, _mm256_set1_epi8(0x30)));
          // int16 lanes = scale of group 2j (lower 128) / 2j+1 (upper), sign-extended: byte into the
          // high half, then arithmetic shift.
          const __m256i pat = _mm256_setr_epi8(-128, 2 * jj, -128, 2 * jj, -128, 2 * jj, -128, 2 * jj, -128, 2 * jj,
                                               -128, 2 * jj, -128, 2 * jj, -128, 2 * jj, -128, 2 * jj + 1, -128,
                                               2 * jj + 1, -128, 2 * jj + 1, -128, 2 * jj + 1, -128, 2 * jj + 1,
                                               -128, 2 * jj + 1, -128, 2 * jj + 1, -128, 2 * jj + 1);
          scale[r] = _mm256_srai_epi16(_mm256_shuffle_epi8(sc[r], pat), 8);
        });
        unroll<C>([&](auto c) {
          const __m256i xv = load256(a.x + c * a.x_row_bytes + i * kQ8KBytes + kQ8KQs + 32 * jj);
          const __m256i corr = _mm256_maddubs_epi16(_mm256_set1_epi8(32), xv);
          unroll<R>([&](auto r) {
            const __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(codes[r], xv), corr);
            isum[r][c] = _mm256_add_epi32(isum[r][c], _mm256_madd_epi16(p16, scale[r]));
          });
        });
      });
      unroll<C>([&](auto c) {
        const float d8 = ld_f32(a.x + c * a.x_row_bytes + i * kQ8KBytes);
        unroll<R>([&](auto r) {
          const float d = f16_at(wb[r] + 208) * d8;
          acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r][c]), _mm256_set1_ps(d), acc[r][c]);
        });
      });
    }
    unroll<R>([&](auto r) { unroll<C>([&](auto c) { a.y[c * a.ldy + r] = hsum256(acc[r][c]); }); });
  }
};

using KQ4_K = KxKernel<false, 2, 2>;
using KQ5_K = KxKernel<true, 2, 2>;
using KQ6_K = Q6Kernel<2, 2>;

}  // namespace

void vec_dot_q4_K(int64_t n, float* s, const void* x, const void* y) { vec_dot_tile<KQ4_K>(n, s, x, y); }
void vec_dot_q5_K(int64_t n, float* s, const void* x, const void* y) { vec_dot_tile<KQ5_K>(n, s, x, y); }
void vec_dot_q6_K(int64_t n, float* s, const void* x, const void* y) { vec_dot_tile<KQ6_K>(n, s, x, y); }

void gemm_q4_K(int64_t n, const void* w, size_t wrb, int64_t r0, int64_t r1, const void* x, size_t xrb, int64_t T,
               float* y, int64_t ldy) {
  gemm_tiles<KQ4_K>(n, w, wrb, r0, r1, x, xrb, T, y, ldy);
}
void gemm_q5_K(int64_t n, const void* w, size_t wrb, int64_t r0, int64_t r1, const void* x, size_t xrb, int64_t T,
               float* y, int64_t ldy) {
  gemm_tiles<KQ5_K>(n, w, wrb, r0, r1, x, xrb, T, y, ldy);
}
void gemm_q6_K(int64_t n, const void* w, size_t wrb, int64_t r0, int64_t r1, const void* x, size_t xrb, int64_t T,
               float* y, int64_t ldy) {
  gemm_tiles<KQ6_K>(n, w, wrb, r0, r1, x, xrb, T, y, ldy);
}

}  // namespace frugal::avx2
