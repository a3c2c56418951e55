// AVX-512 twins of ops::rms_norm_row and ops::silu_mul (backend/ops_scalar.h spells out the arithmetic
// they follow; same bits).
#include <immintrin.h>

#include <limits>

#include "backend/cpu/elementwise.h"
#include "backend/ops_scalar.h"

namespace frugal::ops {

namespace {

inline __mmask16 tail_mask(int64_t n) { return (__mmask16)((1u << n) - 1); }

// silu(x) for 16 lanes: ops::silu step by step (max/min clamp, +inf denominator where -x > kExpMax, roundscale = nearbyint, FMAs).
inline __m512 silu16(__m512 x) {
  __m512 a = _mm512_xor_ps(x, _mm512_set1_ps(-0.0f));
  a = _mm512_min_ps(_mm512_max_ps(a, _mm512_set1_ps(kExpMin)), _mm512_set1_ps(kExpMax));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(a, _mm512_set1_ps(kLog2e)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), a);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), r);
  __m512 p = _mm512_set1_ps(kExpC[0]);
  for (int i = 1; i < 8; ++i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kExpC[i]));
  const __m512 two_n =
      _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
  const __m512 den = _mm512_fmadd_ps(p, two_n, _mm512_set1_ps(1.0f));
  const __mmask16 over = _mm512_cmp_ps_mask(_mm512_xor_ps(x, _mm512_set1_ps(-0.0f)), _mm512_set1_ps(kExpMax), _CMP_GT_OQ);
  return _mm512_div_ps(x, _mm512_mask_blend_ps(over, den, _mm512_set1_ps(std::numeric_limits<float>::infinity())));
}

}  // namespace

void rms_norm_row_avx512(const float* x, const float* w, int64_t D, float eps, float* y) {
  __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();  // lanes 0..7, 8..15
  int64_t i = 0;
  for (; i + 16 <= D; i += 16) {
    const __m512d a = _mm512_cvtps_pd(_mm256_loadu_ps(x + i));
    const __m512d b = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8));
    s0 = _mm512_fmadd_pd(a, a, s0);  // the products are exact in double: same as multiply, then add
    s1 = _mm512_fmadd_pd(b, b, s1);
  }
  alignas(64) double lanes[kSumLanes];
  _mm512_store_pd(lanes, s0);
  _mm512_store_pd(lanes + 8, s1);
  const __m512 scale = _mm512_set1_ps(rms_scale(sum_squares_finish(lanes, x, i, D), D, eps));
  for (i = 0; i < D; i += 16) {
    const __mmask16 m = D - i >= 16 ? (__mmask16)0xFFFF : tail_mask(D - i);
    __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), scale);
    if (w) v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, w + i));
    _mm512_mask_storeu_ps(y + i, m, v);
  }
}

void silu_mul_avx512(float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : tail_mask(n - i);
    const __m512 v = _mm512_mul_ps(silu16(_mm512_maskz_loadu_ps(m, g + i)), _mm512_maskz_loadu_ps(m, u + i));
    _mm512_mask_storeu_ps(g + i, m, v);
  }
}

}  // namespace frugal::ops
