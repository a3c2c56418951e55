// Small AVX2 helpers shared by the quant_*_avx2.cpp kernel files. Internal linkage only (see
// quant_gemm.h); include only from files built with the AVX2 flags.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "backend/quant_load.h"

namespace frugal {
namespace {  // NOLINT: per-ISA internal linkage

// Horizontal sum with a fixed tree: lanes (i, i+4), then (i, i+2), (i, i+1).
inline float hsum256(__m256 v) {
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  const __m128 s1 = _mm_add_ss(s2, _mm_movehdup_ps(s2));
  return _mm_cvtss_f32(s1);
}

inline __m256i load256(const uint8_t* p) { return _mm256_loadu_si256((const __m256i*)p); }

// Sum of the 8 int32 lanes.
inline int32_t hsum256_epi32(__m256i v) {
  const __m128i h = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i q = _mm_add_epi32(h, _mm_unpackhi_epi64(h, h));
  return _mm_cvtsi128_si32(_mm_add_epi32(q, _mm_shuffle_epi32(q, 1)));
}

// Sum of int16 pairs -> int32 lanes.
inline __m256i pair_sums(__m256i v) { return _mm256_madd_epi16(v, _mm256_set1_epi16(1)); }

}  // namespace
}  // namespace frugal
