// AVX-512 decode kernel for 1:4 and 2:4 sparse Q8_0 / Q4_0 weights (T < 8 activation columns) that
// gathers the activations instead of placing the weights. A full group of 16 blocks stores its kept
// values in lanes (tensor/sparse_nm.h, "kept lanes"): one load gives 4 kept values of each of the 16
// blocks, so dword lane i of every step is block i and the integer sums accumulate across the steps
// with no cross-lane reduction. For every kept weight the kernel computes the index of its activation
// from the block's position codes (one vpermb per row and group puts each pair of blocks' code bytes
// into a qword, then per step vpmultishiftqb pulls out each group's code, 2:4: one vpermb table maps
// (code, s) to the position of the group's kept value s, plus the group's base), gathers 64 activations
// with one vpermt2b from the step's 128-byte window (2:4; activations packed per column in step order)
// or two from a 256-byte one (1:4), and multiplies them with the 64 kept values: half (2:4) or a
// quarter (1:4) of the dense kernel's multiply-adds and no per-weight placement. A last group of fewer
// than 16 blocks (block by block in the file) is summed block by block with vpexpandb.
//
//   isum_b = sum_kept (qx_i + 128) * w_i - 128 * sum_kept w_i     exact int32, w_i = Q8_0 code, or
//            Q4_0 code - 8 (= the dense block sum: dropped elements are 0)
// then exactly the dense AVX-512 legacy float contract (quant_legacy_avx512.cpp):
//   a_{b mod 4} = fma(float(isum_b), f32(dw_b) * f32(dx_b), a_{b mod 4}), blocks in order;
//   result = (a0 + a2) + (a1 + a3)
// so values are bit-identical to the dense kernels on the expanded weights (sparse_quant_test.cpp).
// GCC 12 reports false -Wmaybe-uninitialized inside the AVX-512 intrinsic headers (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
// vpermb / vpermt2b / vpmultishiftqb are AVX512_VBMI, vpexpandb AVX512_VBMI2;
// sparse_gather_walk_avx512() checks the CPU.
#pragma GCC target("avx512vbmi,avx512vbmi2")

#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/quant_avx512_util.h"
#include "backend/quant_gemm.h"
#include "backend/sparse_quant.h"
#include "backend/sparse_walk_util.h"

namespace frugal {

namespace {

constexpr int kGroup = (int)kSparseGroupBlocks;  // 16 blocks
constexpr size_t kGroupActs = 512;               // activation bytes of a group

// Per column: per group of 16 blocks 512 bytes of activations (each qx + 128 as u8): a full group in
// step order (step s, block i: the E = 16 / N activations s E .. s E + E - 1 of block i, so step s's
// window is the 16 E bytes at 16 E s), the last partial group block by block (32 bytes each); then per
// group [dx as 16 f32], 0 past the end.
size_t col_bytes(int64_t nb) { return (size_t)sparse_group_count(nb) * (kGroupActs + 64); }

template <int N>
void pack_cols(const uint8_t* x, size_t xrb, int64_t cols, int64_t nb, uint8_t* dst) {
  constexpr int E = 16 / N;
  const int64_t ng = sparse_group_count(nb);
  const __m256i flip = _mm256_set1_epi8((char)0x80);
  for (int64_t c = 0; c < cols; ++c) {
    const uint8_t* col = x + c * xrb;
    uint8_t* p = dst + c * col_bytes(nb);
    for (int64_t g = 0; g < ng; ++g) {
      const int cnt = (int)std::min<int64_t>(kGroup, nb - g * kGroup);
      uint8_t* a = p + g * kGroupActs;
      for (int i = 0; i < cnt; ++i) {
        alignas(32) uint8_t q[32];
        const __m256i v = _mm256_loadu_si256((const __m256i*)(col + (g * kGroup + i) * 34 + 2));
        _mm256_store_si256((__m256i*)q, _mm256_xor_si256(v, flip));
        if (cnt < kGroup) {
          std::memcpy(a + 32 * i, q, 32);
        } else {
          for (int s = 0; s < 32 / E; ++s) std::memcpy(a + 16 * E * s + E * i, q + E * s, E);
        }
      }
      alignas(64) uint16_t d[16] = {0};
      for (int i = 0; i < cnt; ++i) d[i] = ld_u16(col + (g * kGroup + i) * 34);
      _mm512_store_ps(p + ng * kGroupActs + g * 64, _mm512_cvtph_ps(_mm256_load_si256((const __m256i*)d)));
    }
  }
}

// Register byte j of every step: lane l = j / 4 = block l, kept value 4 s + j % 4 of it.
template <bool kQ4, int N>
struct Fmt {
  static constexpr int kKept = 8 * N;                         // kept values per block
  static constexpr int kKeptBytes = kQ4 ? kKept / 2 : kKept;  // per block
  static constexpr int kSteps = kKept / 4;                    // 4 (2:4) or 2 (1:4)
  static constexpr int kCodeBits = N == 1 ? 2 : 3;            // per group of 4 (tensor/sparse_nm.h)
  static constexpr int kMaskBytes = kCodeBits;                // 8 codes per block
  static constexpr int kWindow = 256 / N;                     // activation bytes per step: 128 or 256
};

// Constants for register byte j (block l = j / 4, u = j % 4; step s: kept value k = 4 s + u, group
// k / N of the block, slot k % N):
//   qsrc:     qword q gets the code bytes of blocks 2q and 2q + 1 (one after the other) from the group's
//             mask plane
//   ctrl[s]:  the bit offset of the group's code in that qword
//   sel:      8 slot (2:4: selects the lut half); lut[8 slot + code]: position of the kept value
//   base:     the group's first activation in the step's window: 8 l + 4 (u / 2) (2:4), 16 l + 4 u (1:4)
struct Consts {
  __m512i ctrl[4], sel, lut, base, qsrc, code, lo4, k128, k8;
};

template <bool kQ4, int N>
Consts make_consts() {
  using F = Fmt<kQ4, N>;
  alignas(64) uint8_t ctrl[4][64] = {}, sel[64], lut[64] = {0}, base[64], qsrc[64];
  for (int j = 0; j < 64; ++j) {
    const int l = j / 4, u = j % 4;
    for (int s = 0; s < F::kSteps; ++s) {
      const int grp = (4 * s + u) / N;
      ctrl[s][j] = (uint8_t)(8 * F::kMaskBytes * (l % 2) + F::kCodeBits * grp);
    }
    sel[j] = (uint8_t)(8 * (u % N));
    base[j] = (uint8_t)(N == 2 ? 8 * l + 4 * (u / 2) : 16 * l + 4 * u);
    const int q = j / 8, t = j % 8;
    qsrc[j] = (uint8_t)(t < 2 * F::kMaskBytes ? 2 * F::kMaskBytes * q + t : 0);
  }
  // 2:4: the pair of kSparsePairs24 (codes 6, 7 are never valid). 1:4: the code is the position.
  for (int c = 0; c < 6; ++c) {
    lut[c] = kSparsePairs24[c][0];
    lut[8 + c] = kSparsePairs24[c][1];
  }
  Consts k;
  for (int s = 0; s < 4; ++s) k.ctrl[s] = _mm512_load_si512(ctrl[s]);
  k.sel = _mm512_load_si512(sel);
  k.lut = _mm512_load_si512(lut);
  k.base = _mm512_load_si512(base);
  k.qsrc = _mm512_load_si512(qsrc);
  k.code = _mm512_set1_epi8((1 << F::kCodeBits) - 1);
  k.lo4 = _mm512_set1_epi8(0x0F);
  k.k128 = _mm512_set1_epi8((char)0x80);
  k.k8 = _mm512_set1_epi8(8);
  return k;
}

// Step s of a full group: gather indices and the 64 signed kept values (byte j: block j / 4).
// cq: the row's code qwords (vpermb of its mask plane by qsrc).
template <bool kQ4, int N, int S>
__attribute__((always_inline)) inline void step_weights(__m512i cq, const uint8_t* kept, const Consts& k, __m512i& idx,
                                                        __m512i& w) {
  const __m512i bits = _mm512_multishift_epi64_epi8(k.ctrl[S], cq);
  if constexpr (N == 2) {
    const __m512i code = _mm512_ternarylogic_epi32(bits, k.code, k.sel, 0xEA);  // (bits & 7) | 8 slot
    idx = _mm512_or_si512(_mm512_permutexvar_epi8(code, k.lut), k.base);
  } else {
    idx = _mm512_ternarylogic_epi32(bits, k.code, k.base, 0xEA);  // (bits & 3) | base
  }
  if constexpr (!kQ4) {
    w = _mm512_loadu_si512(kept + 64 * S);
  } else {
    const __m256i raw = _mm256_loadu_si256((const __m256i*)(kept + 32 * S));
    const __m256i lo4 = _mm512_castsi512_si256(k.lo4);
    const __m512i nibbles = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(raw, lo4)),
                                               _mm256_and_si256(_mm256_srli_epi16(raw, 4), lo4), 1);
    w = _mm512_sub_epi8(nibbles, k.k8);
  }
}

// The activations of a step's indices from its window (16 E bytes at win).
template <int N>
__attribute__((always_inline)) inline __m512i gather(const __m512i* win, __m512i idx) {
  const __m512i lo = _mm512_permutex2var_epi8(win[0], idx, win[1]);
  if constexpr (N == 2) return lo;
  // 256-byte window: index bit 7 picks the upper 128 bytes.
  return _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), lo, _mm512_permutex2var_epi8(win[2], idx, win[3]));
}

// isum of block i of a partial group (kept values block by block) against 32 packed activations xa.
template <bool kQ4, int N>
__attribute__((always_inline)) inline int32_t block_isum(const SparseTypeInfo& f, const SparsePlanes& p, int i,
                                                         const uint8_t* xa) {
  using F = Fmt<kQ4, N>;
  const uint8_t* kv = p.kept + (size_t)i * F::kKeptBytes;
  __m128i kept;
  if constexpr (!kQ4) {
    kept = _mm_maskz_loadu_epi8((__mmask16)((1u << F::kKept) - 1), kv);
  } else {
    const __m128i raw = _mm_maskz_loadu_epi8((__mmask16)((1u << F::kKeptBytes) - 1), kv);
    const __m128i m4 = _mm_set1_epi8(0x0F);
    const __m128i codes = _mm_or_si128(_mm_and_si128(raw, m4),
                                       _mm_bslli_si128(_mm_and_si128(_mm_srli_epi16(raw, 4), m4), F::kKeptBytes));
    kept = _mm_sub_epi8(codes, _mm_set1_epi8(8));
  }
  const __m256i w = _mm256_maskz_expand_epi8((__mmask32)sparse_mask(f, p.mask, i), _mm256_castsi128_si256(kept));
  const __m256i z = _mm256_setzero_si256();
  const __m256i v = _mm256_sub_epi32(_mm256_dpbusd_epi32(z, _mm256_load_si256((const __m256i*)xa), w),
                                     _mm256_dpbusd_epi32(z, _mm256_set1_epi8((char)0x80), w));
  return _mm512_reduce_add_epi32(_mm512_zextsi256_si512(v));  // exact int32: the order does not matter
}

// Group g (cnt blocks; kFull: cnt = 16, kept in lanes) of R rows (planes p[r]) against C columns of
// packed activations (column stride xb, dx at dx_off): acc[r * C + c] += the group's blocks, in order.
template <bool kQ4, int N, int R, int C, bool kFull>
__attribute__((always_inline)) inline void walk_group(const SparseTypeInfo& f, int64_t g, int cnt,
                                                      const SparsePlanes* p, const uint8_t* xw, size_t xb,
                                                      size_t dx_off, const Consts& k, __m128* acc) {
  using F = Fmt<kQ4, N>;
  __m512i isum[R][C];
  if constexpr (kFull) {
    __m512i cq[R], corr[R];
    unroll<R>([&](auto r) __attribute__((always_inline)) {
      cq[r] = _mm512_permutexvar_epi8(k.qsrc, _mm512_loadu_si512(p[r].mask));
      corr[r] = _mm512_setzero_si512();
      unroll<C>([&](auto c) __attribute__((always_inline)) { isum[r][c] = _mm512_setzero_si512(); });
    });
    unroll<F::kSteps>([&](auto sc) __attribute__((always_inline)) {
      constexpr int s = decltype(sc)::value;
      __m512i win[C][4];
      unroll<C>([&](auto c) __attribute__((always_inline)) {
        const uint8_t* w0 = xw + c * xb + g * kGroupActs + F::kWindow * s;
        unroll<F::kWindow / 64>([&](auto q) __attribute__((always_inline)) { win[c][q] = _mm512_load_si512(w0 + 64 * q); });
      });
      unroll<R>([&](auto r) __attribute__((always_inline)) {
        __m512i idx, w;
        step_weights<kQ4, N, s>(cq[r], p[r].kept, k, idx, w);
        corr[r] = _mm512_dpbusd_epi32(corr[r], k.k128, w);
        unroll<C>([&](auto c) __attribute__((always_inline)) { isum[r][c] = _mm512_dpbusd_epi32(isum[r][c], gather<N>(win[c], idx), w); });
      });
    });
    unroll<R>([&](auto r) __attribute__((always_inline)) { unroll<C>([&](auto c) __attribute__((always_inline)) { isum[r][c] = _mm512_sub_epi32(isum[r][c], corr[r]); }); });
  } else {
    unroll<R>([&](auto r) __attribute__((always_inline)) {
      unroll<C>([&](auto c) __attribute__((always_inline)) {
        alignas(64) int32_t s[16] = {0};
        const uint8_t* xa = xw + c * xb + g * kGroupActs;
        for (int i = 0; i < cnt; ++i) s[i] = block_isum<kQ4, N>(f, p[r], i, xa + 32 * i);
        isum[r][c] = _mm512_load_si512(s);
      });
    });
  }
  unroll<R>([&](auto r) __attribute__((always_inline)) {
    const __m512 dw = _mm512_cvtph_ps(kFull ? _mm256_loadu_si256((const __m256i*)p[r].d)
                                            : _mm256_maskz_loadu_epi16((__mmask16)((1u << cnt) - 1), p[r].d));
    unroll<C>([&](auto c) __attribute__((always_inline)) {
      const __m512 sv = _mm512_mul_ps(dw, _mm512_load_ps(xw + c * xb + dx_off + g * 64));
      accumulate_blocks<kFull>(_mm512_cvtepi32_ps(isum[r][c]), sv, cnt, acc[r * C + c]);
    });
  });
}

// walk_group over R rows and one column as the group step of walk_quarters_t1 (sparse_walk_util.h).
template <bool kQ4, int N>
struct GroupRows {
  const SparseTypeInfo& f;
  const uint8_t* xw;
  size_t dx_off;
  const Consts& k;
  template <int R, bool kFull>
  __attribute__((always_inline)) void run(int64_t g, int cnt, const SparsePlanes* p, __m128* acc) const {
    walk_group<kQ4, N, R, 1, kFull>(f, g, cnt, p, xw, 0, dx_off, k, acc);
  }
};

// One row against C columns.
template <bool kQ4, int N, int C>
void walk_row(const SparseTypeInfo& f, int64_t nb, const uint8_t* row, const uint8_t* xw, size_t xb, float* out,
              int64_t ldo, const Consts& k) {
  __m128 acc[C];
  unroll<C>([&](auto c) __attribute__((always_inline)) { acc[c] = _mm_setzero_ps(); });
  const size_t dx_off = (size_t)sparse_group_count(nb) * kGroupActs;
  const int64_t full = nb / kGroup;
  for (int64_t g = 0; g < full; ++g) {
    const SparsePlanes p = sparse_group(f, row, nb, g).p;
    walk_group<kQ4, N, 1, C, true>(f, g, kGroup, &p, xw, xb, dx_off, k, acc);
  }
  if (full * kGroup < nb) {
    const SparsePlanes p = sparse_group(f, row, nb, full).p;
    walk_group<kQ4, N, 1, C, false>(f, full, (int)(nb - full * kGroup), &p, xw, xb, dx_off, k, acc);
  }
  unroll<C>([&](auto c) __attribute__((always_inline)) { out[c * ldo] = sum_block_lanes(acc[c]); });
}

template <bool kQ4, int N>
void walk(const SparseTypeInfo& f, int64_t n, const uint8_t* w, size_t wrb, int64_t r0, int64_t r1, const uint8_t* x,
          size_t xrb, int64_t T, float* y, int64_t ldy) {
  static const Consts k = make_consts<kQ4, N>();
  thread_local std::vector<uint8_t> xbuf;
  const int64_t nb = n / 32;
  const size_t xb = col_bytes(nb);
  uint8_t* xw = grow(xbuf, (size_t)T * xb);
  pack_cols<N>(x, xrb, T, nb, xw);
  if (T == 1) {
    walk_quarters_t1(f, nb, w, wrb, r0, r1, y,
                     GroupRows<kQ4, N>{f, xw, (size_t)sparse_group_count(nb) * kGroupActs, k});
    return;
  }
  for_rows_prefetched(w, wrb, (size_t)nb * f.block_bytes, r0, r1, [&](const uint8_t* row, int64_t r) {
    for_column_groups(T, [&](auto cols, int64_t c0) {
      walk_row<kQ4, N, decltype(cols)::value>(f, nb, row, xw + c0 * xb, xb, y + c0 * ldy + r, ldy, k);
    });
  });
}

}  // namespace

SparseWalkFn sparse_gather_walk_avx512(const SparseTypeInfo& f) {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512vbmi") || !__builtin_cpu_supports("avx512vbmi2") || !f.kept_lanes) return nullptr;
  if (f.base == DType::Q8_0) return f.n == 2 ? &walk<false, 2> : &walk<false, 1>;
  if (f.base == DType::Q4_0) return f.n == 2 ? &walk<true, 2> : &walk<true, 1>;
  return nullptr;
}

}  // namespace frugal
