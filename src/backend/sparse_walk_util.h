// Pieces shared by the AVX-512 sparse decode walks (sparse_gather_avx512.cpp, sparse_walk_avx512.cpp,
// sparse_f16_avx512.cpp): the row loop with its prefetch, the column dispatch, and the legacy formats'
// float tail. Internal linkage only; include only from files built with the AVX-512 flags (after
// quant_avx512_util.h).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "tensor/sparse_nm.h"

namespace frugal {
namespace {  // NOLINT: per-ISA internal linkage

// Rows [r0, r1) of w in order: fn(row pointer, r), the row kPrefetchRows ahead prefetched one line at a
// time. Added when a row was three planes over the whole row (two or three short streams that the
// hardware prefetcher picked up late: K = 5632 rows ran at half the bandwidth of K = 2048 ones); with
// planar 16-block groups a row is one stream and the T = 1 walks read 4 rows from 4 quarters instead.
// Kept for T > 1 and the F16 walk; not re-measured with the grouped layout.
template <class Fn>
__attribute__((always_inline)) inline void for_rows_prefetched(const uint8_t* w, size_t w_row_bytes, size_t row_bytes,
                                                               int64_t r0, int64_t r1, Fn&& fn) {
  constexpr int64_t kPrefetchRows = 2;
  for (int64_t r = r0; r < r1; ++r) {
    if (r + kPrefetchRows < r1) {
      const uint8_t* ahead = w + (r + kPrefetchRows) * w_row_bytes;
      for (size_t o = 0; o < row_bytes; o += 64) _mm_prefetch((const char*)(ahead + o), _MM_HINT_T0);
    }
    fn(w + r * w_row_bytes, r);
  }
}

// Columns [0, T) in groups of at most 4: fn(std::integral_constant<int, C>, first column c0).
template <class Fn>
__attribute__((always_inline)) inline void for_column_groups(int64_t T, Fn&& fn) {
  for (int64_t c0 = 0; c0 < T; c0 += 4) {
    switch (std::min<int64_t>(4, T - c0)) {
      case 1: fn(std::integral_constant<int, 1>{}, c0); break;
      case 2: fn(std::integral_constant<int, 2>{}, c0); break;
      case 3: fn(std::integral_constant<int, 3>{}, c0); break;
      default: fn(std::integral_constant<int, 4>{}, c0); break;
    }
  }
}

// The dense legacy float contract for up to 16 blocks: lane b of f (the block's integer sum as float)
// times lane b of sv (the scale product) into acc lane b mod 4, blocks in order; cnt blocks when !kFull.
template <bool kFull>
__attribute__((always_inline)) inline void accumulate_blocks(__m512 f, __m512 sv, int cnt, __m128& acc) {
  unroll<4>([&](auto qc) __attribute__((always_inline)) {
    constexpr int q = decltype(qc)::value;
    if (kFull || 4 * q < cnt) {
      const __mmask8 m = kFull ? 0xF : (__mmask8)((1u << std::min(cnt - 4 * q, 4)) - 1);
      acc = _mm_mask3_fmadd_ps(_mm512_extractf32x4_ps(f, q), _mm512_extractf32x4_ps(sv, q), acc, m);
    }
  });
}

// (a0 + a2) + (a1 + a3): the final sum of the four block lanes.
inline float sum_block_lanes(__m128 acc) {
  const __m128 s2 = _mm_add_ps(acc, _mm_movehl_ps(acc, acc));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

// T = 1, rows row, row + step, ..., row + (R - 1) step, group by group: grp.template run<R, kFull>(g, cnt,
// the R rows' planes of group g, acc); then out[r * step] = the sum of acc[r]'s lanes.
template <int R, class Group>
__attribute__((always_inline)) inline void walk_rows_t1(const SparseTypeInfo& f, int64_t nb, const uint8_t* row,
                                                        size_t wrb, int64_t step, float* out, const Group& grp) {
  __m128 acc[R];
  unroll<R>([&](auto r) __attribute__((always_inline)) { acc[r] = _mm_setzero_ps(); });
  SparsePlanes p[R];
  auto at = [&](int64_t g) __attribute__((always_inline)) {
    unroll<R>([&](auto r) __attribute__((always_inline)) { p[r] = sparse_group(f, row + (size_t)(r * step) * wrb, nb, g).p; });
  };
  const int64_t full = nb / kSparseGroupBlocks;
  for (int64_t g = 0; g < full; ++g) {
    at(g);
    grp.template run<R, true>(g, (int)kSparseGroupBlocks, p, acc);
  }
  if (full * kSparseGroupBlocks < nb) {
    at(full);
    grp.template run<R, false>(full, (int)(nb - full * kSparseGroupBlocks), p, acc);
  }
  unroll<R>([&](auto r) __attribute__((always_inline)) { out[r * step] = sum_block_lanes(acc[r]); });
}

// T = 1 over rows [r0, r1): 4 quarters of q rows, row j of every quarter at once (4 sequential streams, as
// the dense walk), then the remaining rows one at a time; y[r] for every row.
template <class Group>
inline void walk_quarters_t1(const SparseTypeInfo& f, int64_t nb, const uint8_t* w, size_t wrb, int64_t r0,
                             int64_t r1, float* y, const Group& grp) {
  const int64_t q = (r1 - r0) / 4;
  for (int64_t j = r0; j < r0 + q; ++j) walk_rows_t1<4>(f, nb, w + j * wrb, wrb, q, y + j, grp);
  for (int64_t r = r0 + 4 * q; r < r1; ++r) walk_rows_t1<1>(f, nb, w + r * wrb, wrb, 0, y + r, grp);
}

}  // namespace
}  // namespace frugal
