// Small AVX-512 helpers shared by the quant_*_avx512.cpp kernel files. Internal linkage only (see
// quant_gemm.h); include only from files built with the AVX-512 flags.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "backend/quant_load.h"

namespace frugal {
namespace {  // NOLINT: per-ISA internal linkage

// Horizontal sum with a fixed tree: lanes (i, i+8), then (i, i+4), (i, i+2), (i, i+1).
inline float hsum512(__m512 v) {
  const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  const __m128 s1 = _mm_add_ss(s2, _mm_movehdup_ps(s2));
  return _mm_cvtss_f32(s1);
}

// [f16(h0) x 8 | f16(h1) x 8] as f32.
inline __m512 half_pair(uint16_t h0, uint16_t h1) {
  const __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)h0 | ((uint32_t)h1 << 16))));
  const __m512i idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(f));
}

// Same, but only lanes 0 and 8 set (the others 0): for terms added once per block.
inline __m512 half_pair_lane0(uint16_t h0, uint16_t h1) {
  const __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)h0 | ((uint32_t)h1 << 16))));
  const __m512i idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  return _mm512_maskz_permutexvar_ps(0x0101, idx, _mm512_castps128_ps512(f));
}

// Two 32-byte pieces into one register: [lo | hi]; with only `lo`, the upper half is zero.
inline __m512i load_2x256(const uint8_t* lo, const uint8_t* hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i*)lo)),
                            _mm256_loadu_si256((const __m256i*)hi), 1);
}
inline __m512i load_1x256(const uint8_t* lo) {
  return _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i*)lo));
}


inline __m512i bcast_i32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// rows[j] (j < 16): 8 dwords of row j. out[q]: lane j = dword q of row j (a 16 x 8 dword transpose).
inline void transpose_16x8(const __m256i rows[16], __m512i out[8]) {
  __m512i z[8], t[8], u[8];
  for (int j = 0; j < 8; ++j) z[j] = _mm512_inserti64x4(_mm512_castsi256_si512(rows[j]), rows[j + 8], 1);
  for (int j = 0; j < 8; j += 2) {
    t[j] = _mm512_unpacklo_epi32(z[j], z[j + 1]);
    t[j + 1] = _mm512_unpackhi_epi32(z[j], z[j + 1]);
  }
  for (int h = 0; h < 8; h += 4) {
    u[h] = _mm512_unpacklo_epi64(t[h], t[h + 2]);
    u[h + 1] = _mm512_unpackhi_epi64(t[h], t[h + 2]);
    u[h + 2] = _mm512_unpacklo_epi64(t[h + 1], t[h + 3]);
    u[h + 3] = _mm512_unpackhi_epi64(t[h + 1], t[h + 3]);
  }
  const __m512i lo = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13), hi = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
  for (int q = 0; q < 4; ++q) {
    out[q] = _mm512_permutex2var_epi64(u[q], lo, u[q + 4]);
    out[q + 4] = _mm512_permutex2var_epi64(u[q], hi, u[q + 4]);
  }
}

}  // namespace
}  // namespace frugal
