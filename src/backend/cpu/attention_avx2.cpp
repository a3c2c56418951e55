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

// Q8_0 rows: blocks of 32 values {f16 d, int8 qs[32]} (34 bytes); element i is d * qs[i % 32].
struct Q8Block {
  uint16_t d;
  int8_t qs[32];
};

inline __m256 load8_q8(const void* row, int64_t i) {
  const Q8Block* b = (const Q8Block*)row + (i >> 5);
  const __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)(b->qs + (i & 31)))));
  return _mm256_mul_ps(q, _mm256_set1_ps(_cvtsh_ss(b->d)));
}

inline float load1_q8(const void* row, int64_t i) {
  const Q8Block* b = (const Q8Block*)row + (i >> 5);
  return _cvtsh_ss(b->d) * (float)b->qs[i & 31];
}

inline __m256 load8(const void* row, int64_t i, DType type) {
  if (type == DType::Q8_0) return load8_q8(row, i);
  if (type == DType::F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)((const uint16_t*)row + i)));
  return _mm256_loadu_ps((const float*)row + i);
}

inline float load1(const void* row, int64_t i, DType type) {
  if (type == DType::Q8_0) return load1_q8(row, i);
  if (type == DType::F16) return _cvtsh_ss(((const uint16_t*)row)[i]);
  return ((const float*)row)[i];
}

}  // namespace

void attention_head_avx2(const float* q, const KvView& kv, int64_t g, int64_t n_visible, const AttentionShape& s,
                         float* scratch, float* out) {
  const DType type = kv.type;
  const int64_t dk = s.Dh_k, dv = s.Dh_v, dk8 = dk & ~7, dv8 = dv & ~7;
  const int64_t koff = g * dk, voff = g * dv;  // element offsets of this kv head in a row
  float max_s = -INFINITY;
  for (int64_t t = 0; t < n_visible; ++t) {
    const void* k = kv.k_row(t);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < dk8; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load8(k, koff + i, type), acc);
    float sum = hsum(acc);
    for (int64_t i = dk8; i < dk; ++i) sum += q[i] * load1(k, koff + i, type);
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
    const void* v = kv.v_row(t);
    const float p = scratch[t] * inv;
    const __m256 pv = _mm256_set1_ps(p);
    for (int64_t i = 0; i < dv8; i += 8)
      _mm256_storeu_ps(out + i, _mm256_fmadd_ps(pv, load8(v, voff + i, type), _mm256_loadu_ps(out + i)));
    for (int64_t i = dv8; i < dv; ++i) out[i] += p * load1(v, voff + i, type);
  }
}

}  // namespace frugal::ops
