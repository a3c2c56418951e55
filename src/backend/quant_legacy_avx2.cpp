// Legacy 32-element block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL) x Q8_0/Q8_1 activations on
// AVX2. Scalar twins: quant_ref.cpp (vec_dot_q*_q8_*), quant_ref_iq.cpp (vec_dot_iq4_nl_q8_0).
//
// One block per 256-bit register. Products via vpmaddubsw (u8 x s8 -> int16 pairs, which must not
// saturate): Q8_0 and IQ4_NL (codebook values looked up with vpshufb, |value| <= 127) use |w| x
// sign(x, w) (|pair| <= 2*128*127); nibble formats multiply the unsigned
// codes and subtract offset * (x pair sums) in int16, which stays exact. Then int16 pairs -> int32
// (vpmaddwd with 1) and per block, in float: acc += float(isum_lane) * (d_w * d_x); Q4_1/Q5_1 add
// m_w * s_x in lane 0. One accumulator per (row, column), lanes summed at the end (hsum256).
#include "backend/quant_avx2_util.h"
#include "backend/quant_blocks.h"  // kIQ4NLValues only (its inline functions are not ISA-local)
#include "backend/quant_gemm.h"
#include "backend/quant_kernels.h"

namespace frugal::avx2 {
namespace {

inline __m256i nibbles_16(const uint8_t* qs) {
  const __m128i t = _mm_loadu_si128((const __m128i*)qs);
  const __m256i z = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
  return _mm256_and_si256(z, _mm256_set1_epi8(0x0F));
}

// 16 where bit j of qh is set (byte j), else 0.
inline __m256i high_bits_16(uint32_t qh) {
  const __m256i sel = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
  const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), sel);
  const __m256i bit = _mm256_set1_epi64x((int64_t)0x8040201008040201ull);
  const __m256i on = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
  return _mm256_and_si256(on, _mm256_set1_epi8(16));
}

struct WQ8_0 {
  static constexpr int kBytes = 34, kOffset = 0;
  static constexpr bool kMin = false, kSigned = true;
  static __m256i codes(const uint8_t* b) { return load256(b + 2); }
};
struct WIQ4_NL {
  static constexpr int kBytes = 18, kOffset = 0;
  static constexpr bool kMin = false, kSigned = true;
  static __m256i codes(const uint8_t* b) {
    const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)kIQ4NLValues));
    return _mm256_shuffle_epi8(table, nibbles_16(b + 2));
  }
};
struct WQ4_0 {
  static constexpr int kBytes = 18, kOffset = 8;
  static constexpr bool kMin = false, kSigned = false;
  static __m256i codes(const uint8_t* b) { return nibbles_16(b + 2); }
};
struct WQ4_1 {
  static constexpr int kBytes = 20, kOffset = 0;
  static constexpr bool kMin = true, kSigned = false;
  static __m256i codes(const uint8_t* b) { return nibbles_16(b + 4); }
};
struct WQ5_0 {
  static constexpr int kBytes = 22, kOffset = 16;
  static constexpr bool kMin = false, kSigned = false;
  static __m256i codes(const uint8_t* b) { return _mm256_or_si256(nibbles_16(b + 6), high_bits_16(ld_u32(b + 2))); }
};
struct WQ5_1 {
  static constexpr int kBytes = 24, kOffset = 0;
  static constexpr bool kMin = true, kSigned = false;
  static __m256i codes(const uint8_t* b) { return _mm256_or_si256(nibbles_16(b + 8), high_bits_16(ld_u32(b + 4))); }
};

struct AQ8_0 {
  static constexpr int kBytes = 34, kQs = 2;
};
struct AQ8_1 {
  static constexpr int kBytes = 36, kQs = 4;
};

template <class W, class A, int kR, int kC>
struct LegacyKernel {
  // kDecodeSlices (quant_gemm.h): decode reads kR rows from kR slices of the range at once. Measured
  // (cold 2048 x 5632, best of 3, 1 thread): Q4_0 0.50 -> 0.39 ms, Q8_0 0.50 -> 0.41, Q5_0 0.67 -> 0.55,
  // IQ4_NL 0.54 -> 0.47, Q4_1 0.78 -> 0.56; 1.1B tg48 at 2 threads with --isa avx2: Q4_0 45 -> 51 t/s,
  // Q8_0 43 -> 46 t/s (medians of 4 alternating rounds).
  static constexpr int kRows = kR, kCols = kC, kDecodeSlices = kR;

  template <int R, int C>
  static void tile(const TileArgs& a) {
    const int64_t nb = a.n / 32;
    __m256 acc[R][C];
    unroll<R>([&](auto r) { unroll<C>([&](auto c) { acc[r][c] = _mm256_setzero_ps(); }); });
    for (int64_t ib = 0; ib < nb; ++ib) {
      __m256i wq[R], wu[R];
      __m256 wd[R], wm[R];
      unroll<R>([&](auto r) {
        const uint8_t* b = a.w + r * a.w_row_bytes + ib * W::kBytes;
        wq[r] = W::codes(b);
        if constexpr (W::kSigned) wu[r] = _mm256_sign_epi8(wq[r], wq[r]);
        wd[r] = _mm256_set1_ps(f16_at(b));
        if constexpr (W::kMin) wm[r] = _mm256_setr_ps(f16_at(b + 2), 0, 0, 0, 0, 0, 0, 0);
      });
      unroll<C>([&](auto c) {
        const uint8_t* b = a.x + c * a.x_row_bytes + ib * A::kBytes;
        const __m256i xq = load256(b + A::kQs);
        const __m256 xd = _mm256_set1_ps(f16_at(b));
        __m256i corr = _mm256_setzero_si256();
        if constexpr (W::kOffset != 0) corr = _mm256_maddubs_epi16(_mm256_set1_epi8(W::kOffset), xq);
        __m256 xs;
        if constexpr (W::kMin) xs = _mm256_set1_ps(f16_at(b + 2));
        unroll<R>([&](auto r) {
          __m256i p16;
          if constexpr (W::kSigned) {
            p16 = _mm256_maddubs_epi16(wu[r], _mm256_sign_epi8(xq, wq[r]));
          } else {
            p16 = _mm256_maddubs_epi16(wq[r], xq);
            if constexpr (W::kOffset != 0) p16 = _mm256_sub_epi16(p16, corr);
          }
          const __m256 f = _mm256_cvtepi32_ps(pair_sums(p16));
          acc[r][c] = _mm256_fmadd_ps(f, _mm256_mul_ps(wd[r], xd), acc[r][c]);
          if constexpr (W::kMin) acc[r][c] = _mm256_fmadd_ps(wm[r], xs, acc[r][c]);
        });
      });
    }
    unroll<R>([&](auto r) { unroll<C>([&](auto c) { a.y[c * a.ldy + r] = hsum256(acc[r][c]); }); });
  }
};

using KQ8_0 = LegacyKernel<WQ8_0, AQ8_0, 3, 2>;
using KQ4_0 = LegacyKernel<WQ4_0, AQ8_0, 3, 2>;
using KQ5_0 = LegacyKernel<WQ5_0, AQ8_0, 3, 2>;
using KQ4_1 = LegacyKernel<WQ4_1, AQ8_1, 2, 2>;
using KQ5_1 = LegacyKernel<WQ5_1, AQ8_1, 2, 2>;
using KIQ4_NL = LegacyKernel<WIQ4_NL, AQ8_0, 3, 2>;

}  // namespace

void vec_dot_q8_0(int64_t n, float* s, const void* x, const void* y) { vec_dot_tile<KQ8_0>(n, s, x, y); }
void vec_dot_q4_0(int64_t n, float* s, const void* x, const void* y) { vec_dot_tile<KQ4_0>(n, s, x, y); }
void vec_dot_q5_0(int64_t n, float* s, const void* x, const void* y) { vec_dot_tile<KQ5_0>(n, s, x, y); }
void vec_dot_q4_1(int64_t n, float* s, const void* x, const void* y) { vec_dot_tile<KQ4_1>(n, s, x, y); }
void vec_dot_q5_1(int64_t n, float* s, const void* x, const void* y) { vec_dot_tile<KQ5_1>(n, s, x, y); }
void vec_dot_iq4_nl(int64_t n, float* s, const void* x, const void* y) { vec_dot_tile<KIQ4_NL>(n, s, x, y); }

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
void gemm_iq4_nl(int64_t n, const void* w, size_t wrb, int64_t r0, int64_t r1, const void* x, size_t xrb,
                 int64_t T, float* y, int64_t ldy) {
  gemm_tiles<KIQ4_NL>(n, w, wrb, r0, r1, x, xrb, T, y, ldy);
}

}  // namespace frugal::avx2
