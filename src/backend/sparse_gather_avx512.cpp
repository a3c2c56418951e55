// AVX-512 decode kernel for 1:4 and 2:4 sparse Q8_0 / Q4_0 weights (T < 8 activation columns) that
// gathers the activations instead of placing the weights. For every kept weight it computes the index
// of its activation from the block's position codes (one vpermb puts each block's 2 or 3 code bytes
// under the register bytes of its kept values, vpmultishiftqb pulls out each group's code, one vpermb
// table maps (code, s) to the position of the group's kept value s, plus the group's base), gathers 64
// activations with one vpermt2b from a 128-element window (2:4: 4 blocks) or two from a 256-element
// window (1:4: 8 blocks), and multiplies them with 64 kept values: half (2:4) or a quarter (1:4) of the
// dense kernel's multiply-adds and no per-weight placement. The planar groups of the row layout
// (tensor/sparse_nm.h) give the codes of a step, its kept values and the scales of 16 blocks with one
// load each. Time split (MatmulHotT1 Q8_0_S2_4, weights in L2, 2026-12-01): ~37% of it is the index
// computation, ~11% the correction vpdpbusd; with the weights in memory at 2 threads the kernel runs
// below both its compute and the memory's limit (docs/SPARSITY.md, Performance).
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
// vpermb / vpermt2b / vpmultishiftqb are AVX512_VBMI; sparse_gather_walk_avx512() checks the CPU.
#pragma GCC target("avx512vbmi")

#include <algorithm>
#include <vector>

#include "backend/quant_avx512_util.h"
#include "backend/quant_gemm.h"
#include "backend/sparse_quant.h"
#include "backend/sparse_walk_util.h"

namespace frugal {

namespace {

constexpr int kGroup = 16;  // blocks per float reduction group (as the dense walk)
constexpr int kPad = 8;     // activation blocks are packed in multiples of 8 (the largest step)

// Per column: nb rounded up to 8 blocks of activations [32 bytes per block, each qx + 128 as u8],
// then groups of 16 blocks [dx as 16 f32]. Blocks past the end are zero activations with dx 0.
size_t col_bytes(int64_t nb) {
  return (size_t)((nb + kPad - 1) / kPad) * kPad * 32 + (size_t)((nb + kGroup - 1) / kGroup) * 64;
}

void pack_cols(const uint8_t* x, size_t xrb, int64_t cols, int64_t nb, uint8_t* dst) {
  const int64_t padded = (nb + kPad - 1) / kPad * kPad;
  const __m256i flip = _mm256_set1_epi8((char)0x80);
  for (int64_t c = 0; c < cols; ++c) {
    const uint8_t* col = x + c * xrb;
    uint8_t* p = dst + c * col_bytes(nb);
    for (int64_t b = 0; b < padded; ++b, p += 32) {
      const __m256i q = b < nb ? _mm256_loadu_si256((const __m256i*)(col + b * 34 + 2)) : _mm256_setzero_si256();
      _mm256_store_si256((__m256i*)p, _mm256_xor_si256(q, flip));
    }
    for (int64_t g = 0; g < (nb + kGroup - 1) / kGroup; ++g, p += 64) {
      alignas(64) uint16_t d[16] = {0};
      const int64_t cnt = std::min<int64_t>(kGroup, nb - g * kGroup);
      for (int64_t i = 0; i < cnt; ++i) d[i] = ld_u16(col + (g * kGroup + i) * 34);
      _mm512_store_ps(p, _mm512_cvtph_ps(_mm256_load_si256((const __m256i*)d)));
    }
  }
}

// One step = kStep blocks whose 64 kept values fill one register. Q8_0: in block order and, inside a
// block, in element order (register byte j: block j / kKept, kept value j % kKept). Q4_0: in the order
// the step's kK = 32 kept bytes unpack without a shuffle, [low nibbles | high nibbles]: register byte j < 32
// is kept value j % kKB of block j / kKB, byte 32 + i kept value i % kKB + kKept / 2 of block i / kKB
// (kKB = kKeptBytes); the gather indices follow the same order, and the block sums are reduced with it.
template <bool kQ4, int N>
struct Fmt {
  static constexpr int kKept = 8 * N;                          // kept values per block
  static constexpr int kKeptBytes = kQ4 ? kKept / 2 : kKept;   // per block in the kept plane
  static constexpr int kCodeBits = N == 1 ? 2 : 3;             // per group of 4 (tensor/sparse_nm.h)
  static constexpr int kMaskBytes = kCodeBits;                 // 8 codes per block
  static constexpr int kStep = 64 / kKept;                     // blocks per step: 4 (2:4) or 8 (1:4)
  static constexpr int kSteps = kGroup / kStep;                // steps per group
  // Block (within the step) and kept value of register byte j.
  static constexpr int block_of(int j) { return kQ4 ? (j % 32) / kKeptBytes : j / kKept; }
  static constexpr int kept_of(int j) {
    return kQ4 ? (j % 32) % kKeptBytes + (j >= 32 ? kKept / 2 : 0) : j % kKept;
  }
};

// Tables for register byte j (block b = block_of(j), kept value kk = kept_of(j), group g = kk / N,
// s = kk % N):
//   qsrc:    register qword q gets the code bytes of the block of its bytes in its low bytes (of the
//            two blocks, Q4_0 1:4, one after the other)
//   ctrl[j]: the bit offset of the group's code in that qword
//   sel[j]:  8 s (selects the table half); lut[8 s + code]: position of the group's kept value s
//   base[j]: 32 b + 4 g, the group's first activation in the step's window (< 256)
struct Consts {
  __m512i ctrl, sel, lut, base, qsrc, code, lo4, k128, k8;
};

template <bool kQ4, int N>
Consts make_consts() {
  using F = Fmt<kQ4, N>;
  alignas(64) uint8_t ctrl[64], sel[64], lut[64] = {0}, base[64], qsrc[64];
  for (int j = 0; j < 64; ++j) {
    const int b = F::block_of(j), kk = F::kept_of(j), g = kk / N, s = kk % N;
    // The bytes of a qword belong to one block, or to two consecutive ones (Q4_0 1:4): slot 0 / 1.
    const int b0 = F::block_of(j - j % 8), slot = b - b0;
    ctrl[j] = (uint8_t)(F::kCodeBits * g + 8 * F::kMaskBytes * slot);
    sel[j] = (uint8_t)(8 * s);
    base[j] = (uint8_t)(32 * b + 4 * g);
    const int t = j % 8;  // qword byte t: code byte t % kMaskBytes of block b0 + t / kMaskBytes
    qsrc[j] = (uint8_t)(t < 2 * F::kMaskBytes ? F::kMaskBytes * b0 + t : 0);
  }
  // 1:4: the code is the position; 2:4: the pair of kSparsePairs24 (codes 6, 7 are never valid).
  for (int c = 0; c < 8; ++c) {
    if (N == 1 && c < 4) lut[c] = (uint8_t)c;
    if (N == 2 && c < 6) {
      lut[c] = kSparsePairs24[c][0];
      lut[8 + c] = kSparsePairs24[c][1];
    }
  }
  return Consts{_mm512_load_si512(ctrl), _mm512_load_si512(sel), _mm512_load_si512(lut), _mm512_load_si512(base),
                _mm512_load_si512(qsrc), _mm512_set1_epi8((1 << F::kCodeBits) - 1),
                _mm512_set1_epi8(0x0F), _mm512_set1_epi8((char)0x80), _mm512_set1_epi8(8)};
}

// The weights of one step of `n` (1..kStep) blocks: gather indices, 64 signed kept values, and
// 128 * (sum of each 4 kept values) per dword lane. `mask` and `kept` point at the step's first block
// in their planes; missing blocks read as code 0 and kept bytes 0 (their activations are 0). A full
// step reads 16 code bytes (2:4 uses 12; the kept plane follows within the group).
struct StepW {
  __m512i idx, w, corr;
};

template <bool kQ4, int N, bool kFull>
__attribute__((always_inline)) inline StepW step_weights(const uint8_t* mask, const uint8_t* kept, int n,
                                                         const Consts& k) {
  using F = Fmt<kQ4, N>;
  static_assert(F::kStep * F::kMaskBytes <= 16);
  const __m128i m = kFull ? _mm_loadu_si128((const __m128i*)mask)
                          : _mm_maskz_loadu_epi8((__mmask16)((1u << (n * F::kMaskBytes)) - 1), mask);
  const __m512i src = _mm512_permutexvar_epi8(k.qsrc, _mm512_zextsi128_si512(m));
  const __m512i code = _mm512_ternarylogic_epi32(_mm512_multishift_epi64_epi8(k.ctrl, src), k.code, k.sel, 0xEA);
  StepW s;
  s.idx = _mm512_or_si512(_mm512_permutexvar_epi8(code, k.lut), k.base);
  constexpr int kBytes = F::kStep * F::kKeptBytes;  // 64 (Q8_0) or 32 (Q4_0)
  const uint64_t lm = kFull ? ~0ull : (n * F::kKeptBytes >= 64 ? ~0ull : (1ull << (n * F::kKeptBytes)) - 1);
  if constexpr (!kQ4) {
    static_assert(kBytes == 64);
    s.w = kFull ? _mm512_loadu_si512(kept) : _mm512_maskz_loadu_epi8(lm, kept);
  } else {
    static_assert(kBytes == 32);
    const __m256i raw = kFull ? _mm256_loadu_si256((const __m256i*)kept) : _mm256_maskz_loadu_epi8((__mmask32)lm, kept);
    const __m256i lo4 = _mm512_castsi512_si256(k.lo4);
    const __m512i nibbles = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(raw, lo4)),
                                               _mm256_and_si256(_mm256_srli_epi16(raw, 4), lo4), 1);
    s.w = _mm512_sub_epi8(nibbles, k.k8);
  }
  s.corr = _mm512_dpbusd_epi32(_mm512_setzero_si512(), k.k128, s.w);
  return s;
}

// v[s]: dword lanes of step s (lane l: block_of(4 l) of the step). Returns lane b = block b of the
// group: sums of the lanes of each block, added pairwise (exact int32, so the order does not matter).
//   Q8_0 2:4 (block 4s + l / 4): pairs (2i, 2i + 1) twice. Q8_0 1:4 (8s + l / 2): pairs (2i, 2i + 1).
//   Q4_0 2:4 (4s + (l % 8) / 2): pairs (2i, 2i + 1), then lanes i and i + 4 of each 8.
//   Q4_0 1:4 (8s + l % 8): lanes i and i + 8.
template <bool kQ4, int kSteps>
__attribute__((always_inline)) inline __m512i reduce_steps(const __m512i* v) {
  auto combine = [](__m512i a, __m512i b, __m512i lo, __m512i hi) {
    return _mm512_add_epi32(_mm512_permutex2var_epi32(a, lo, b), _mm512_permutex2var_epi32(a, hi, b));
  };
  const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  if constexpr (kSteps == 4) {
    if constexpr (!kQ4) return combine(combine(v[0], v[1], ev, od), combine(v[2], v[3], ev, od), ev, od);
    const __m512i l4 = _mm512_setr_epi32(0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27);
    const __m512i h4 = _mm512_setr_epi32(4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
    return combine(combine(v[0], v[1], ev, od), combine(v[2], v[3], ev, od), l4, h4);
  }
  if constexpr (!kQ4) return combine(v[0], v[1], ev, od);
  const __m512i l8 = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
  const __m512i h8 = _mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
  return combine(v[0], v[1], l8, h8);
}

// Blocks [16 g, 16 g + cnt) of a row: p is the planar group g (tensor/sparse_nm.h).
template <bool kQ4, int N, int C, bool kFull>
__attribute__((always_inline)) inline void walk_group(int64_t g, int cnt, const SparsePlanes& p, const uint8_t* xw,
                                                      size_t xb, size_t acts_bytes, const Consts& k, __m128 acc[C]) {
  using F = Fmt<kQ4, N>;
  auto has = [&](int block) { return kFull || block < cnt; };
  StepW sw[F::kSteps];
  unroll<F::kSteps>([&](auto s) {
    if (has(F::kStep * s))
      sw[s] = step_weights<kQ4, N, kFull>(p.mask + F::kMaskBytes * F::kStep * s, p.kept + F::kKeptBytes * F::kStep * s,
                                          kFull ? F::kStep : std::min(F::kStep, cnt - F::kStep * s), k);
  });
  const __m512 dw = _mm512_cvtph_ps(kFull ? _mm256_loadu_si256((const __m256i*)p.d)
                                          : _mm256_maskz_loadu_epi16((__mmask16)((1u << cnt) - 1), p.d));
  unroll<C>([&](auto c) {
    const uint8_t* xs = xw + c * xb + g * kGroup * 32;
    __m512i v[F::kSteps];
    unroll<F::kSteps>([&](auto s) {
      if (has(F::kStep * s)) {
        const uint8_t* win = xs + F::kStep * 32 * s;
        __m512i xg = _mm512_permutex2var_epi8(_mm512_load_si512(win), sw[s].idx, _mm512_load_si512(win + 64));
        if constexpr (F::kStep == 8) {  // 256-element window: index bit 7 picks the upper 128
          const __m512i hi = _mm512_permutex2var_epi8(_mm512_load_si512(win + 128), sw[s].idx,
                                                      _mm512_load_si512(win + 192));
          xg = _mm512_mask_blend_epi8(_mm512_movepi8_mask(sw[s].idx), xg, hi);
        }
        v[s] = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), xg, sw[s].w), sw[s].corr);
      } else {
        v[s] = _mm512_setzero_si512();
      }
    });
    const __m512 f = _mm512_cvtepi32_ps(reduce_steps<kQ4, F::kSteps>(v));
    const __m512 sv = _mm512_mul_ps(dw, _mm512_load_ps(xw + c * xb + acts_bytes + g * 64));
    accumulate_blocks<kFull>(f, sv, cnt, acc[c]);
  });
}

template <bool kQ4, int N, int C>
void walk_row(const SparseTypeInfo& f, int64_t nb, const uint8_t* row, const uint8_t* xw, size_t xb, float* out,
              int64_t ldo, const Consts& k) {
  __m128 acc[C];
  unroll<C>([&](auto c) { acc[c] = _mm_setzero_ps(); });
  const size_t acts_bytes = (size_t)((nb + kPad - 1) / kPad) * kPad * 32;
  const int64_t full = nb / kGroup;
  auto at = [&](int64_t g) { return sparse_group(f, row, nb, g).p; };
  for (int64_t g = 0; g < full; ++g) walk_group<kQ4, N, C, true>(g, kGroup, at(g), xw, xb, acts_bytes, k, acc);
  if (full * kGroup < nb)
    walk_group<kQ4, N, C, false>(full, (int)(nb - full * kGroup), at(full), xw, xb, acts_bytes, k, acc);
  unroll<C>([&](auto c) { out[c * ldo] = sum_block_lanes(acc[c]); });
}

// One activation column, R rows at once: step s of the R rows' group g in turn, the activation window
// of the step loaded once. Per row exactly walk_group's arithmetic (the integer sums are exact, the float
// steps the same), so the bits do not depend on R.
template <bool kQ4, int N, int R, bool kFull>
__attribute__((always_inline)) inline void walk_group_rows(int64_t g, int cnt, const SparsePlanes* p,
                                                           const uint8_t* xw, size_t acts_bytes, const Consts& k,
                                                           __m128 acc[R]) {
  using F = Fmt<kQ4, N>;
  auto has = [&](int block) { return kFull || block < cnt; };
  const uint8_t* xs = xw + g * kGroup * 32;
  __m512i v[R][F::kSteps];
  unroll<F::kSteps>([&](auto s) {
    if (!has(F::kStep * s)) {
      unroll<R>([&](auto r) { v[r][s] = _mm512_setzero_si512(); });
      return;
    }
    const uint8_t* win = xs + F::kStep * 32 * s;
    const __m512i w0 = _mm512_load_si512(win), w1 = _mm512_load_si512(win + 64);
    __m512i w2 = w0, w3 = w1;
    if constexpr (F::kStep == 8) {
      w2 = _mm512_load_si512(win + 128);
      w3 = _mm512_load_si512(win + 192);
    }
    const int n_blocks = kFull ? F::kStep : std::min(F::kStep, cnt - F::kStep * s);
    unroll<R>([&](auto r) {
      const StepW sw = step_weights<kQ4, N, kFull>(p[r].mask + F::kMaskBytes * F::kStep * s,
                                                   p[r].kept + F::kKeptBytes * F::kStep * s, n_blocks, k);
      __m512i xg = _mm512_permutex2var_epi8(w0, sw.idx, w1);
      if constexpr (F::kStep == 8)
        xg = _mm512_mask_blend_epi8(_mm512_movepi8_mask(sw.idx), xg, _mm512_permutex2var_epi8(w2, sw.idx, w3));
      v[r][s] = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), xg, sw.w), sw.corr);
    });
  });
  const __m512 dx = _mm512_load_ps(xw + acts_bytes + g * 64);
  unroll<R>([&](auto r) {
    const __m512 dw = _mm512_cvtph_ps(kFull ? _mm256_loadu_si256((const __m256i*)p[r].d)
                                            : _mm256_maskz_loadu_epi16((__mmask16)((1u << cnt) - 1), p[r].d));
    const __m512 f = _mm512_cvtepi32_ps(reduce_steps<kQ4, F::kSteps>(v[r]));
    accumulate_blocks<kFull>(f, _mm512_mul_ps(dw, dx), cnt, acc[r]);
  });
}

// walk_group_rows as the group step of walk_quarters_t1 (sparse_walk_util.h).
template <bool kQ4, int N>
struct GroupRows {
  const uint8_t* xw;
  size_t acts_bytes;
  const Consts& k;
  template <int R, bool kFull>
  __attribute__((always_inline)) void run(int64_t g, int cnt, const SparsePlanes* p, __m128* acc) const {
    walk_group_rows<kQ4, N, R, kFull>(g, cnt, p, xw, acts_bytes, k, acc);
  }
};

template <bool kQ4, int N>
void walk(const SparseTypeInfo& f, int64_t n, const uint8_t* w, size_t wrb, int64_t r0, int64_t r1, const uint8_t* x,
          size_t xrb, int64_t T, float* y, int64_t ldy) {
  static const Consts k = make_consts<kQ4, N>();
  thread_local std::vector<uint8_t> xbuf;
  const int64_t nb = n / 32;
  const size_t xb = col_bytes(nb);
  uint8_t* xw = grow(xbuf, (size_t)T * xb);
  pack_cols(x, xrb, T, nb, xw);
  if (T == 1) {
    const size_t acts_bytes = (size_t)((nb + kPad - 1) / kPad) * kPad * 32;
    walk_quarters_t1(f, nb, w, wrb, r0, r1, y, GroupRows<kQ4, N>{xw, acts_bytes, k});
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
  if (!__builtin_cpu_supports("avx512vbmi") || f.m != 4 || (f.n != 1 && f.n != 2)) return nullptr;
  if (f.base == DType::Q8_0) return f.n == 2 ? &walk<false, 2> : &walk<false, 1>;
  if (f.base == DType::Q4_0) return f.n == 2 ? &walk<true, 2> : &walk<true, 1>;
  return nullptr;
}

}  // namespace frugal
