#include "backend/cpu/attention_avx2.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

namespace frugal::ops {

namespace {

inline float hsum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}

inline __m256 load8(const void* row, int64_t i, bool f16) {
  if (f16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)((const uint16_t*)row + i)));
  return _mm256_loadu_ps((const float*)row + i);
}

inline float load1(const void* row, int64_t i, bool f16) {
  if (f16) return _cvtsh_ss(((const uint16_t*)row)[i]);
  return ((const float*)row)[i];
}

}  // namespace

void attention_head_avx2(const float* q, const KvView& kv, int64_t g, int64_t n_visible, const AttentionShape& s,
                         float* scratch, float* out) {
  const bool f16 = kv.type == DType::F16;
  const size_t es = f16 ? 2 : 4;
  const int64_t dk = s.Dh_k, dv = s.Dh_v, dk8 = dk & ~7, dv8 = dv & ~7;
  const size_t koff = (size_t)(g * dk) * es, voff = (size_t)(g * dv) * es;
  float max_s = -INFINITY;
  for (int64_t t = 0; t < n_visible; ++t) {
    const void* k = kv.k_row(t) + koff;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < dk8; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load8(k, i, f16), acc);
    float sum = hsum(acc);
    for (int64_t i = dk8; i < dk; ++i) sum += q[i] * load1(k, i, f16);
    scratch[t] = sum * s.scale;
    max_s = std::max(max_s, scratch[t]);
  }
  double total = 0.0;
  for (int64_t t = 0; t < n_visible; ++t) {
    const float e = std::exp(scratch[t] - max_s);
    scratch[t] = e;
    total += e;
  }
  const float inv = (float)(1.0 / total);
  for (int64_t i = 0; i < dv; ++i) out[i] = 0.f;
  for (int64_t t = 0; t < n_visible; ++t) {
    const void* v = kv.v_row(t) + voff;
    const float p = scratch[t] * inv;
    const __m256 pv = _mm256_set1_ps(p);
    for (int64_t i = 0; i < dv8; i += 8)
      _mm256_storeu_ps(out + i, _mm256_fmadd_ps(pv, load8(v, i, f16), _mm256_loadu_ps(out + i)));
    for (int64_t i = dv8; i < dv; ++i) out[i] += p * load1(v, i, f16);
  }
}

}  // namespace frugal::ops
