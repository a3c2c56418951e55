// K-quants (Q4_K, Q5_K, Q6_K) x Q8_K activations on AVX-512 VNNI. Scalar twins: quant_ref_k.cpp.
//
// A super-block (256 elements) is four 64-element registers k = 0..3 with codes in element order:
//   Q4_K/Q5_K: register k = sub-blocks 2k (bytes 0..31) and 2k+1 (bytes 32..63): the 32 qs bytes of
//              chunk k broadcast to both halves, low nibbles in the lower half, high nibbles in the
//              upper; Q5_K adds 16 where qh bit 2k (lower) / 2k+1 (upper) is set.
//   Q6_K:      register k = 16-element groups 4k..4k+3; codes 0..63 from ql nibbles and qh bit pairs.
// Per register: p = vpdpbusd(codes, x) (int32 lanes of 4 products; Q6_K starts at -32*sum4(x) so the
// offset 32 is removed exactly), then isum += p * scale_of_lane via vpdpwssd (|p| < 2^15, scale in the
// low 16 bits). Per super-block, in float: acc += float(isum_lane) * (d_w * d_x); Q4_K/Q5_K subtract
// float(min_s * (bsums[2s] + bsums[2s+1])) * (dmin_w * d_x) in lanes 0..7. One accumulator per
// (row, column), lanes summed at the end (hsum512).
// GCC 12 reports false -Wmaybe-uninitialized inside the AVX-512 intrinsic headers (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include "backend/quant_avx512_util.h"
#include "backend/quant_gemm.h"
#include "backend/quant_kernels.h"

namespace frugal::avx512 {
namespace {

constexpr int kQ4KBytes = 144, kQ5KBytes = 176, kQ6KBytes = 210, kQ8KBytes = 292;
constexpr int kQ8KQs = 4, kQ8KBsums = 260;

// 12 packed bytes -> int32 lanes [sc0..sc7, m0..m7] (6-bit values).
inline __m512i unpack_k_scales(const uint8_t* q) {
  const uint32_t u0 = ld_u32(q), u1 = ld_u32(q + 4), u2 = ld_u32(q + 8);
  constexpr uint32_t k6 = 0x3f3f3f3f, k4 = 0x0f0f0f0f, k2 = 0x03030303;
  const uint32_t sc_lo = u0 & k6, m_lo = u1 & k6;
  const uint32_t sc_hi = (u2 & k4) | (((u0 >> 6) & k2) << 4);
  const uint32_t m_hi = ((u2 >> 4) & k4) | (((u1 >> 6) & k2) << 4);
  return _mm512_cvtepu8_epi32(_mm_set_epi32((int)m_hi, (int)m_lo, (int)sc_hi, (int)sc_lo));
}

// Lane pattern [2k x 8, 2k+1 x 8] picking the two sub-block scales of register k.
inline __m512i kx_scale_idx(int k) {
  return _mm512_set_epi32(2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1,
                          2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k);
}

// Nibbles of 32 bytes: low nibbles in bytes 0..31, high nibbles in bytes 32..63.
inline __m512i nibbles_32(const uint8_t* q) {
  __m512i z = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)q));
  z = _mm512_mask_srli_epi16(z, 0xFFFF0000u, z, 4);
  return _mm512_and_si512(z, _mm512_set1_epi8(0x0F));
}

template <bool kFive, int kR, int kC>
struct KxKernel {  // Q4_K (kFive = false) and Q5_K
  static constexpr int kRows = kR, kCols = kC;
  static constexpr int kBytes = kFive ? kQ5KBytes : kQ4KBytes;
  static constexpr int kQs = kFive ? 48 : 16;

  template <int R, int C>
  static void tile(const TileArgs& a) {
    const int64_t nsb = a.n / 256;
    __m512 acc[R][C];
    unroll<R>([&](auto r) { unroll<C>([&](auto c) { acc[r][c] = _mm512_setzero_ps(); }); });
    const __m512i min_idx = _mm512_set_epi32(15, 15, 14, 14, 13, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8);
    for (int64_t i = 0; i < nsb; ++i) {
      const uint8_t* wb[R];
      __m512i sc[R];
      __m256i mins[R];
      __m512i qh[R];
      unroll<R>([&](auto r) {
        wb[r] = a.w + r * a.w_row_bytes + i * kBytes;
        sc[r] = unpack_k_scales(wb[r] + 4);
        mins[r] = _mm512_cvtepi32_epi16(_mm512_permutexvar_epi32(min_idx, sc[r]));
        if constexpr (kFive) qh[r] = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)(wb[r] + 16)));
      });
      __m512i isum[R][C];
      unroll<R>([&](auto r) { unroll<C>([&](auto c) { isum[r][c] = _mm512_setzero_si512(); }); });
      unroll<4>([&](auto k) {
        __m512i codes[R], scale[R];
        const __m512i idx = kx_scale_idx(k);
        unroll<R>([&](auto r) {
          codes[r] = nibbles_32(wb[r] + kQs + 32 * k);
          if constexpr (kFive) {
            const __m512i bit = _mm512_mask_blend_epi64(0xF0, _mm512_set1_epi8((char)(1 << (2 * k))),
                                                        _mm512_set1_epi8((char)(2 << (2 * k))));
            codes[r] = _mm512_mask_add_epi8(codes[r], _mm512_test_epi8_mask(qh[r], bit), codes[r],
                                            _mm512_set1_epi8(16));
          }
          scale[r] = _mm512_permutexvar_epi32(idx, sc[r]);
        });
        unroll<C>([&](auto c) {
          const __m512i xv = _mm512_loadu_si512(a.x + c * a.x_row_bytes + i * kQ8KBytes + kQ8KQs + 64 * k);
          unroll<R>([&](auto r) {
            const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), codes[r], xv);
            isum[r][c] = _mm512_dpwssd_epi32(isum[r][c], p, scale[r]);
          });
        });
      });
      unroll<C>([&](auto c) {
        const uint8_t* xb = a.x + c * a.x_row_bytes + i * kQ8KBytes;
        const float d8 = ld_f32(xb);
        const __m256i bsums = _mm256_loadu_si256((const __m256i*)(xb + kQ8KBsums));
        unroll<R>([&](auto r) {
          const float d = _cvtsh_ss(ld_u16(wb[r])) * d8;
          const float dmin = _cvtsh_ss(ld_u16(wb[r] + 2)) * d8;
          acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[r][c]), _mm512_set1_ps(d), acc[r][c]);
          const __m256 m = _mm256_cvtepi32_ps(_mm256_madd_epi16(bsums, mins[r]));
          acc[r][c] = _mm512_fnmadd_ps(_mm512_zextps256_ps512(m), _mm512_set1_ps(dmin), acc[r][c]);
        });
      });
    }
    unroll<R>([&](auto r) { unroll<C>([&](auto c) { a.y[c * a.ldy + r] = hsum512(acc[r][c]); }); });
  }
};

// Q6_K codes of register k (0..3) of a super-block; L = ql half (64 bytes), H = qh half broadcast.
inline __m512i q6_codes(__m512i L, __m512i H, bool odd) {
  const __m512i lo = odd ? _mm512_and_si512(_mm512_srli_epi16(L, 4), _mm512_set1_epi8(0x0F))
                         : _mm512_and_si512(L, _mm512_set1_epi8(0x0F));
  // Bit pair j of qh (j = 0,1 for even k; 2,3 for odd k) moved to bits 4..5.
  const __m512i hi = odd ? _mm512_mask_srli_epi16(H, 0xFFFF0000u, H, 2)
                         : _mm512_mask_slli_epi16(_mm512_slli_epi16(H, 4), 0xFFFF0000u, H, 2);
  return _mm512_or_si512(lo, _mm512_and_si512(hi, _mm512_set1_epi8(0x30)));
}

template <int kR, int kC>
struct Q6Kernel {
  static constexpr int kRows = kR, kCols = kC;

  template <int R, int C>
  static void tile(const TileArgs& a) {
    const int64_t nsb = a.n / 256;
    __m512 acc[R][C];
    unroll<R>([&](auto r) { unroll<C>([&](auto c) { acc[r][c] = _mm512_setzero_ps(); }); });
    for (int64_t i = 0; i < nsb; ++i) {
      const uint8_t* wb[R];
      __m512i sc[R];
      unroll<R>([&](auto r) {
        wb[r] = a.w + r * a.w_row_bytes + i * kQ6KBytes;
        const __m512i s = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)(wb[r] + 192)));
        sc[r] = _mm512_and_si512(s, _mm512_set1_epi32(0xFFFF));  // int16 scale, high half 0
      });
      __m512i isum[R][C];
      unroll<R>([&](auto r) { unroll<C>([&](auto c) { isum[r][c] = _mm512_setzero_si512(); }); });
      unroll<4>([&](auto k) {
        constexpr int h = decltype(k)::value / 2;
        constexpr bool odd = (decltype(k)::value % 2) == 1;
        const __m512i idx = _mm512_set_epi32(4 * k + 3, 4 * k + 3, 4 * k + 3, 4 * k + 3, 4 * k + 2, 4 * k + 2,
                                             4 * k + 2, 4 * k + 2, 4 * k + 1, 4 * k + 1, 4 * k + 1, 4 * k + 1,
                                             4 * k, 4 * k, 4 * k, 4 * k);
        __m512i codes[R], scale[R];
        unroll<R>([&](auto r) {
          const __m512i L = _mm512_loadu_si512(wb[r] + 64 * h);
          const __m512i H = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)(wb[r] + 128 + 32 * h)));
          codes[r] = q6_codes(L, H, odd);
          scale[r] = _mm512_permutexvar_epi32(idx, sc[r]);
        });
        unroll<C>([&](auto c) {
          const __m512i xv = _mm512_loadu_si512(a.x + c * a.x_row_bytes + i * kQ8KBytes + kQ8KQs + 64 * k);
          const __m512i zero = _mm512_setzero_si512();
          const __m512i corr = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, _mm512_set1_epi8(32), xv));
          unroll<R>([&](auto r) {
            const __m512i p = _mm512_dpbusd_epi32(corr, codes[r], xv);
            isum[r][c] = _mm512_dpwssd_epi32(isum[r][c], p, scale[r]);
          });
        });
      });
      unroll<C>([&](auto c) {
        const float d8 = ld_f32(a.x + c * a.x_row_bytes + i * kQ8KBytes);
        unroll<R>([&](auto r) {
          const float d = _cvtsh_ss(ld_u16(wb[r] + 208)) * d8;
          acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[r][c]), _mm512_set1_ps(d), acc[r][c]);
        });
      });
    }
    unroll<R>([&](auto r) { unroll<C>([&](auto c) { a.y[c * a.ldy + r] = hsum512(acc[r][c]); }); });
  }
};

using KQ4_K = KxKernel<false, 4, 4>;
using KQ5_K = KxKernel<true, 4, 4>;
using KQ6_K = Q6Kernel<4, 4>;

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

}  // namespace frugal::avx512
