// AVX2 + FMA twins of ops::rms_norm_row and ops::silu_mul (backend/ops_scalar.h spells out the
// arithmetic they follow; same bits). Tails go through the scalar kernels, which compute the same.
#include <immintrin.h>

#include <limits>

#include "backend/cpu/elementwise.h"
#include "backend/ops_scalar.h"

namespace frugal::ops {

namespace {

// silu(x) for 8 lanes: ops::silu step by step (max/min clamp, +inf denominator where -x > kExpMax, round = nearbyint, FMAs).
inline __m256 silu8(__m256 x) {
  __m256 a = _mm256_xor_ps(x, _mm256_set1_ps(-0.0f));
  a = _mm256_min_ps(_mm256_max_ps(a, _mm256_set1_ps(kExpMin)), _mm256_set1_ps(kExpMax));
  const __m256 n =
      _mm256_round_ps(_mm256_mul_ps(a, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), a);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
  __m256 p = _mm256_set1_ps(kExpC[0]);
  for (int i = 1; i < 8; ++i) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpC[i]));
  const __m256 two_n =
      _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
  const __m256 den = _mm256_fmadd_ps(p, two_n, _mm256_set1_ps(1.0f));
  const __m256 over = _mm256_cmp_ps(_mm256_xor_ps(x, _mm256_set1_ps(-0.0f)), _mm256_set1_ps(kExpMax), _CMP_GT_OQ);
  return _mm256_div_ps(x, _mm256_blendv_ps(den, _mm256_set1_ps(std::numeric_limits<float>::infinity()), over));
}

}  // namespace

void rms_norm_row_avx2(const float* x, const float* w, int64_t D, float eps, float* y) {
  __m256d s[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
  int64_t i = 0;
  for (; i + 16 <= D; i += 16) {
    for (int k = 0; k < 4; ++k) {  // lanes 4k..4k+3; the products are exact in double
      const __m256d a = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4 * k));
      s[k] = _mm256_fmadd_pd(a, a, s[k]);
    }
  }
  alignas(32) double lanes[kSumLanes];
  for (int k = 0; k < 4; ++k) _mm256_store_pd(lanes + 4 * k, s[k]);
  const float sc = rms_scale(sum_squares_finish(lanes, x, i, D), D, eps);
  const __m256 scale = _mm256_set1_ps(sc);
  for (i = 0; i + 8 <= D; i += 8) {
    __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), scale);
    if (w) v = _mm256_mul_ps(v, _mm256_loadu_ps(w + i));
    _mm256_storeu_ps(y + i, v);
  }
  for (; i < D; ++i) y[i] = w ? (x[i] * sc) * w[i] : x[i] * sc;
}

void silu_mul_avx2(float* g, const float* u, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(g + i, _mm256_mul_ps(silu8(_mm256_loadu_ps(g + i)), _mm256_loadu_ps(u + i)));
  silu_mul(g + i, u + i, n - i);
}

}  // namespace frugal::ops
