// AVX-512 decode kernel for N:M sparse Q8_0 / Q4_0 weights with M = 8 or 16 (T < 8 activation
// columns): a sequential row walk that expands each pair of kept-value blocks straight into registers
// (vpexpandb with the block's keep mask, AVX512_VBMI2) and runs the dense legacy walk's arithmetic on
// them. 1:4 and 2:4 use the faster activation-gathering kernel (sparse_gather_avx512.cpp).
//
// Arithmetic contract: exactly the dense AVX-512 legacy contract (quant_legacy_avx512.cpp header):
//   isum_b = sum_i (code_i - offset) * qx_i    exact int32 (dropped elements: code = offset, i.e. 0)
//   s_b    = f32(dw_b) * f32(dx_b)
//   a_{b mod 4} = fma(float(isum_b), s_b, a_{b mod 4}), blocks in order;  result = (a0 + a2) + (a1 + a3)
// so each (row, token) value is bit-identical to the dense kernels (row walk and lane = row prefill) on
// the expanded weights, which the sparse gemm uses for T >= 8 (sparse_quant.cpp). Tested in
// sparse_quant_test.cpp (sparse == dense bit for bit for every T).
// GCC 12 reports false -Wmaybe-uninitialized inside the AVX-512 intrinsic headers (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
// The whole file needs VBMI2 (vpexpandb); sparse_walk_avx512() hands out its kernels only when the CPU
// has it. (A pragma rather than function attributes: the unrolled lambdas must get it too.)
#pragma GCC target("avx512vbmi2,avx512vbmi")

#include <algorithm>
#include <array>
#include <vector>

#include "backend/quant_avx512_util.h"
#include "backend/quant_gemm.h"
#include "backend/sparse_quant.h"
#include "backend/sparse_walk_util.h"

namespace frugal {

namespace {

constexpr int kGroup = 16;  // blocks per reduction group

// The first B bytes at p (B = 2, 4, 8 or 16) in the low bytes of a vector, reading exactly B bytes.
template <int B>
__attribute__((always_inline)) inline __m128i load_kept(const uint8_t* p) {
  if constexpr (B == 16) return _mm_loadu_si128((const __m128i*)p);
  if constexpr (B == 8) return _mm_loadl_epi64((const __m128i*)p);
  if constexpr (B == 4) return _mm_cvtsi32_si128((int)ld_u32(p));
  if constexpr (B == 2) return _mm_cvtsi32_si128((int)ld_u16(p));
}

// Unsigned codes of one sparse block from its mask and kept values.
template <bool kQ8, int K>
__attribute__((always_inline)) inline __m256i block_codes(const uint8_t* mask, const uint8_t* b6) {
  const __mmask32 m = (__mmask32)ld_u32(mask);
  // Exact-size plain loads, register-form vpexpandb: the memory form is microcoded on AMD Zen 4
  // (measured 6x slower for the whole walk).
  if constexpr (kQ8) {
    return _mm256_xor_si256(_mm256_maskz_expand_epi8(m, _mm256_castsi128_si256(load_kept<K>(b6))),
                            _mm256_set1_epi8((char)0x80));
  } else {
    const __m128i raw = load_kept<K / 2>(b6);
    const __m128i m4 = _mm_set1_epi8(0x0F);
    const __m128i c = _mm_or_si128(_mm_and_si128(raw, m4), _mm_bslli_si128(_mm_and_si128(_mm_srli_epi16(raw, 4), m4), K / 2));
    return _mm256_mask_expand_epi8(_mm256_set1_epi8(8), m, _mm256_castsi128_si256(c));
  }
}

inline __m512 gather_f16(const uint8_t* base, size_t stride, int count) {
  alignas(32) uint16_t v[16] = {0};
  for (int i = 0; i < count; ++i) v[i] = ld_u16(base + i * stride);
  return _mm512_cvtph_ps(_mm256_load_si256((const __m256i*)v));
}

// Level 1 of the block reduction: u = pairs of step sums (v[2q], v[2q+1]) combined.
// u[q]: the four blocks 4q .. 4q+3, 4 partial-sum lanes each. Returns lane b = block b.
inline __m512i reduce_pairs(const __m512i u[4]) {
  auto combine = [](__m512i a, __m512i b, __m512i lo, __m512i hi) {
    return _mm512_add_epi32(_mm512_permutex2var_epi32(a, lo, b), _mm512_permutex2var_epi32(a, hi, b));
  };
  const __m512i l2 = _mm512_setr_epi32(0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29);
  const __m512i h2 = _mm512_setr_epi32(2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31);
  const __m512i l3 = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i h3 = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  return combine(combine(u[0], u[1], l2, h2), combine(u[2], u[3], l2, h2), l3, h3);
}

// v[s]: lanes 0..7 = partial sums of block 2s, lanes 8..15 = block 2s+1. Returns lane b = block b.
inline __m512i reduce_blocks(const __m512i v[8]) {
  const __m512i l1 = _mm512_setr_epi32(0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27);
  const __m512i h1 = _mm512_setr_epi32(4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
  __m512i u[4];
  for (int q = 0; q < 4; ++q)
    u[q] = _mm512_add_epi32(_mm512_permutex2var_epi32(v[2 * q], l1, v[2 * q + 1]),
                            _mm512_permutex2var_epi32(v[2 * q], h1, v[2 * q + 1]));
  return reduce_pairs(u);
}

// Activations per column: steps of two blocks [q 64 B | corr 64 B (-offset * sum4(q))], then groups of
// 16 blocks [dx 16 f32].
size_t col_bytes(int64_t nb) { return (size_t)((nb + 1) / 2) * 128 + (size_t)((nb + kGroup - 1) / kGroup) * 64; }

void pack_cols(const uint8_t* x, size_t xrb, int64_t cols, int64_t nb, int offset, uint8_t* dst) {
  for (int64_t c = 0; c < cols; ++c) {
    const uint8_t* col = x + c * xrb;
    uint8_t* p = dst + c * col_bytes(nb);
    for (int64_t s = 0; s < (nb + 1) / 2; ++s, p += 128) {
      const uint8_t* b0 = col + 2 * s * 34;
      const __m512i q = 2 * s + 1 < nb ? load_2x256(b0 + 2, b0 + 34 + 2) : load_1x256(b0 + 2);
      const __m512i zero = _mm512_setzero_si512();
      _mm512_store_si512(p, q);
      _mm512_store_si512(p + 64, _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, _mm512_set1_epi8((char)offset), q)));
    }
    for (int64_t g = 0; g < (nb + kGroup - 1) / kGroup; ++g, p += 64) {
      const int cnt = (int)std::min<int64_t>(kGroup, nb - g * kGroup);
      _mm512_store_ps(p, gather_f16(col + g * kGroup * 34, 34, cnt));
    }
  }
}

// Blocks [16 g, 16 g + cnt) of a row: p is the planar group g (tensor/sparse_nm.h).
template <bool kQ8, int K, int C, bool kFull>
__attribute__((always_inline)) inline void walk_group(int64_t g, int cnt, const SparsePlanes& p, size_t kb,
                                                      const uint8_t* xw, size_t xb, size_t steps_bytes,
                                                      __m128 acc[C]) {
  auto has = [&](int block) { return kFull || block < cnt; };
  auto codes_of = [&](int i) { return block_codes<kQ8, K>(p.mask + 4 * i, p.kept + i * kb); };
  __m512i codes[8];
  unroll<8>([&](auto s) {
    if (has(2 * s)) {
      const __m256i lo = codes_of(2 * s);
      const __m256i hi = has(2 * s + 1) ? codes_of(2 * s + 1) : lo;
      codes[s] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    }
  });
  const __m512 dw = _mm512_cvtph_ps(kFull ? _mm256_loadu_si256((const __m256i*)p.d)
                                          : _mm256_maskz_loadu_epi16((__mmask16)((1u << cnt) - 1), p.d));
  unroll<C>([&](auto c) {
    const uint8_t* xs = xw + c * xb + g * (kGroup / 2) * 128;
    __m512i v[8];
    unroll<8>([&](auto s) {
      v[s] = has(2 * s) ? _mm512_dpbusd_epi32(_mm512_load_si512(xs + 128 * s + 64), codes[s],
                                              _mm512_load_si512(xs + 128 * s))
                        : _mm512_setzero_si512();
    });
    const __m512 f = _mm512_cvtepi32_ps(reduce_blocks(v));
    const __m512 sv = _mm512_mul_ps(dw, _mm512_load_ps(xw + c * xb + steps_bytes + g * 64));
    accumulate_blocks<kFull>(f, sv, cnt, acc[c]);
  });
}

template <bool kQ8, int K, int C>
void walk_row(const SparseTypeInfo& f, int64_t nb, const uint8_t* row, const uint8_t* xw, size_t xb, float* out,
              int64_t ldo) {
  __m128 acc[C];
  unroll<C>([&](auto c) { acc[c] = _mm_setzero_ps(); });
  const size_t steps_bytes = (size_t)((nb + 1) / 2) * 128;
  const int64_t full = nb / kGroup;
  const size_t kb = f.kept_bytes;
  auto at = [&](int64_t g) { return sparse_group(f, row, nb, g).p; };
  for (int64_t g = 0; g < full; ++g) walk_group<kQ8, K, C, true>(g, kGroup, at(g), kb, xw, xb, steps_bytes, acc);
  if (full * kGroup < nb)
    walk_group<kQ8, K, C, false>(full, (int)(nb - full * kGroup), at(full), kb, xw, xb, steps_bytes, acc);
  unroll<C>([&](auto c) { out[c * ldo] = sum_block_lanes(acc[c]); });
}

// One activation column, R rows at once: each step (2 blocks) of the R rows' group g in turn, the step's
// activations loaded once, the step sums combined pairwise as they come (reduce_blocks' first level; the
// integer sums are exact, so the order does not change them). Per row exactly walk_group's values.
template <bool kQ8, int K, int R, bool kFull>
__attribute__((always_inline)) inline void walk_group_rows(int64_t g, int cnt, const SparsePlanes* p, size_t kb,
                                                           const uint8_t* xw, size_t steps_bytes, __m128 acc[R]) {
  auto has = [&](int block) { return kFull || block < cnt; };
  const __m512i l1 = _mm512_setr_epi32(0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27);
  const __m512i h1 = _mm512_setr_epi32(4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
  const uint8_t* xs = xw + g * (kGroup / 2) * 128;
  __m512i u[R][4];
  unroll<4>([&](auto q) {
    __m512i v[R][2];
    unroll<2>([&](auto h) {
      constexpr int s = 2 * decltype(q)::value + decltype(h)::value;
      if (!has(2 * s)) {
        unroll<R>([&](auto r) { v[r][h] = _mm512_setzero_si512(); });
        return;
      }
      const __m512i xq = _mm512_load_si512(xs + 128 * s), xc = _mm512_load_si512(xs + 128 * s + 64);
      unroll<R>([&](auto r) {
        const __m256i lo = block_codes<kQ8, K>(p[r].mask + 8 * s, p[r].kept + 2 * s * kb);
        const __m256i hi = has(2 * s + 1) ? block_codes<kQ8, K>(p[r].mask + 8 * s + 4, p[r].kept + (2 * s + 1) * kb) : lo;
        v[r][h] = _mm512_dpbusd_epi32(xc, _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1), xq);
      });
    });
    unroll<R>([&](auto r) {
      u[r][q] = _mm512_add_epi32(_mm512_permutex2var_epi32(v[r][0], l1, v[r][1]),
                                 _mm512_permutex2var_epi32(v[r][0], h1, v[r][1]));
    });
  });
  const __m512 dx = _mm512_load_ps(xw + steps_bytes + g * 64);
  unroll<R>([&](auto r) {
    const __m512 dw = _mm512_cvtph_ps(kFull ? _mm256_loadu_si256((const __m256i*)p[r].d)
                                            : _mm256_maskz_loadu_epi16((__mmask16)((1u << cnt) - 1), p[r].d));
    const __m512 f = _mm512_cvtepi32_ps(reduce_pairs(u[r]));
    accumulate_blocks<kFull>(f, _mm512_mul_ps(dw, dx), cnt, acc[r]);
  });
}

// walk_group_rows as the group step of walk_quarters_t1 (sparse_walk_util.h).
template <bool kQ8, int K>
struct GroupRows {
  size_t kb;
  const uint8_t* xw;
  size_t steps_bytes;
  template <int R, bool kFull>
  __attribute__((always_inline)) void run(int64_t g, int cnt, const SparsePlanes* p, __m128* acc) const {
    walk_group_rows<kQ8, K, R, kFull>(g, cnt, p, kb, xw, steps_bytes, acc);
  }
};

template <bool kQ8, int K>
void walk(const SparseTypeInfo& f, int64_t n, const uint8_t* w, size_t wrb, int64_t r0, int64_t r1, const uint8_t* x,
          size_t xrb, int64_t T, float* y, int64_t ldy) {
  thread_local std::vector<uint8_t> xbuf;
  const int64_t nb = n / 32;
  const size_t xb = col_bytes(nb);
  uint8_t* xw = grow(xbuf, (size_t)T * xb);
  pack_cols(x, xrb, T, nb, kQ8 ? 128 : 8, xw);
  if (T == 1) {
    walk_quarters_t1(f, nb, w, wrb, r0, r1, y, GroupRows<kQ8, K>{f.kept_bytes, xw, (size_t)((nb + 1) / 2) * 128});
    return;
  }
  for_rows_prefetched(w, wrb, (size_t)nb * f.block_bytes, r0, r1, [&](const uint8_t* row, int64_t r) {
    for_column_groups(T, [&](auto cols, int64_t c0) {
      walk_row<kQ8, K, decltype(cols)::value>(f, nb, row, xw + c0 * xb, xb, y + c0 * ldy + r, ldy);
    });
  });
}

}  // namespace

SparseWalkFn sparse_walk_avx512(const SparseTypeInfo& f) {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512vbmi2") || !__builtin_cpu_supports("avx512vbmi")) return nullptr;
  if (SparseWalkFn h = sparse_f16_walk_avx512(f)) return h;    // F16 base
  if (SparseWalkFn g = sparse_gather_walk_avx512(f)) return g;  // 1:4 and 2:4
  const bool q8 = f.base == DType::Q8_0;
  if (!q8 && f.base != DType::Q4_0) return nullptr;
  switch (f.kept) {
    case 4: return q8 ? &walk<true, 4> : &walk<false, 4>;
    case 8: return q8 ? &walk<true, 8> : &walk<false, 8>;
    case 16: return q8 ? &walk<true, 16> : &walk<false, 16>;
    default: return nullptr;
  }
}

}  // namespace frugal
