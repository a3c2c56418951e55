// AVX2 decode kernel (T < 8 activation columns) for 1:4 and 2:4 sparse Q8_0 / Q4_0 weights: each
// block's kept values are placed at their positions in a register (one vpshufb with a control built
// from the block's position codes: vpsrlvd pulls out the 8 codes, vpermd looks up each group's byte
// pattern, one add puts in the group's first kept value) and then multiplied exactly as the dense AVX2
// kernel does (quant_legacy_avx2.cpp): lane l of a block = the sum of elements 4l..4l+3 (vpmaddubsw
// with |w| x sign(x, w), vpmaddwd), acc += float(lane) * (d_w * d_x), one accumulator per (row, column),
// hsum256 at the end; so values are bit-identical to the dense AVX2 kernels on the expanded weights
// (Q4_0's dense kernel multiplies unsigned codes and subtracts 8 x the pair sums; both give the same
// exact int32 lanes). No buffer: the expand-then-dense path read and wrote each block twice and ran at
// about a tenth of dense decode. The same walk with the AVX-512 dense kernels' float tail (per-block
// sums in four chains) serves AVX-512 CPUs without VBMI (sparse_walk_avx512_novbmi).
#include <algorithm>
#include <cstring>

#include "backend/quant_avx2_util.h"
#include "backend/sparse_quant.h"

namespace frugal {

namespace {

// Constants: per group g (dword g of the control): the code's shift in the block's code word, the byte
// pattern of each code (kept value 0 / 1 of the group at its positions, 0x80 = zero elsewhere) and the
// index of the group's first kept value in its 128-bit lane.
struct Consts {
  __m256i shifts, patterns, first, code_mask, lo4;
};

template <int N>
Consts make_consts() {
  alignas(32) uint32_t shifts[8], patterns[8] = {0}, first[8];
  const int bits = N == 1 ? 2 : 3;
  for (int g = 0; g < 8; ++g) {
    shifts[g] = (uint32_t)(bits * g);
    first[g] = 0x01010101u * (uint32_t)(N * (g % 4));  // kept N g' of lane-local group g' = g mod 4
  }
  for (int c = 0; c < 8; ++c) {
    uint8_t b[4] = {0x80, 0x80, 0x80, 0x80};
    if (N == 1 && c < 4) b[c] = 0;
    if (N == 2 && c < 6) {
      b[kSparsePairs24[c][0]] = 0;
      b[kSparsePairs24[c][1]] = 1;
    }
    std::memcpy(&patterns[c], b, 4);
  }
  return Consts{_mm256_load_si256((const __m256i*)shifts), _mm256_load_si256((const __m256i*)patterns),
                _mm256_load_si256((const __m256i*)first), _mm256_set1_epi32((1 << bits) - 1),
                _mm256_set1_epi8(0x0F)};
}

// Block i's K kept values as signed codes (Q4_0: code - 8), in order, in the low K bytes.
template <bool kQ4, int N>
inline __m128i kept_values(const SparseGroup& grp, int i, bool lanes, const Consts& k) {
  constexpr int K = 8 * N;
  __m128i v;
  if (lanes) {  // tensor/sparse_nm.h: chunk c holds kept 4c..4c+3 of every block
    const uint8_t* p = kQ4 ? grp.p.kept + 4 * (i % 8) : grp.p.kept + 4 * i;
    constexpr int kChunk = kQ4 ? 32 : 64;
    v = N == 2 ? _mm_setr_epi32((int)ld_u32(p), (int)ld_u32(p + kChunk), (int)ld_u32(p + 2 * kChunk),
                                (int)ld_u32(p + 3 * kChunk))
               : _mm_setr_epi32((int)ld_u32(p), (int)ld_u32(p + kChunk), 0, 0);
    if constexpr (kQ4) {
      if (i >= 8) v = _mm_srli_epi16(v, 4);
      v = _mm_and_si128(v, _mm256_castsi256_si128(k.lo4));
    }
  } else if constexpr (!kQ4) {
    const uint8_t* p = grp.p.kept + (size_t)i * K;
    v = K == 16 ? _mm_loadu_si128((const __m128i*)p) : _mm_loadl_epi64((const __m128i*)p);
  } else {  // K / 2 bytes, byte t = kept t | kept t + K/2 << 4
    const uint8_t* p = grp.p.kept + (size_t)i * (K / 2);
    const __m128i raw = K == 16 ? _mm_loadl_epi64((const __m128i*)p) : _mm_cvtsi32_si128((int)ld_u32(p));
    const __m128i m4 = _mm256_castsi256_si128(k.lo4);
    const __m128i lo = _mm_and_si128(raw, m4), hi = _mm_and_si128(_mm_srli_epi16(raw, 4), m4);
    v = K == 16 ? _mm_unpacklo_epi64(lo, hi) : _mm_unpacklo_epi32(lo, hi);
  }
  if constexpr (kQ4) v = _mm_sub_epi8(v, _mm_set1_epi8(8));
  return v;
}

// The block's 32 dense signed codes (dropped elements 0).
template <bool kQ4, int N>
inline __m256i block_codes(const SparseTypeInfo& f, const SparseGroup& grp, int i, bool lanes, const Consts& k) {
  const __m128i kept = kept_values<kQ4, N>(grp, i, lanes, k);
  // Lane 0 (groups 0..3) takes kept 0..4N-1, lane 1 (groups 4..7) kept 4N..8N-1.
  const __m256i src = _mm256_set_m128i(N == 2 ? _mm_srli_si128(kept, 8) : _mm_srli_si128(kept, 4), kept);
  const uint32_t word = ld_u32(grp.p.mask + (size_t)i * f.mask_bytes);  // 2 or 3 code bytes (+ the next)
  const __m256i codes = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)word), k.shifts), k.code_mask);
  const __m256i ctrl = _mm256_add_epi8(_mm256_permutevar8x32_epi32(k.patterns, codes), k.first);
  return _mm256_shuffle_epi8(src, ctrl);
}

// Float contracts of the dense kernels the walk must equal: kAvx2 (quant_legacy_avx2.cpp: 8 lanes of
// 4-element sums per block, acc += lane * (d_w * d_x), hsum256) or kAvx512 (quant_legacy_avx512.cpp: the
// block's exact int32 sum, a_{b mod 4} = fma(float(isum_b), f32(dw_b) * f32(dx_b), a_{b mod 4}) in block
// order, result (a0 + a2) + (a1 + a3)); the integer sums are exact either way.
enum class Tail { kAvx2, kAvx512 };

template <Tail kTail>
struct Acc {
  __m256 v8 = _mm256_setzero_ps();  // kAvx2
  __m128 chains = _mm_setzero_ps();  // kAvx512: lane j = chain j
  alignas(16) float f[4] = {}, s[4] = {};  // kAvx512: the pending blocks of the current 4
};

// One row against C columns of Q8_0 activations.
template <bool kQ4, int N, int C, Tail kTail>
void walk_row(const SparseTypeInfo& f, int64_t nb, const uint8_t* row, const uint8_t* x, size_t xrb, float* out,
              int64_t ldo, const Consts& k) {
  Acc<kTail> acc[C];
  for (int64_t g = 0; g < sparse_group_count(nb); ++g) {
    const SparseGroup grp = sparse_group(f, row, nb, g);
    const bool lanes = sparse_group_in_lanes(f, grp);
    for (int i = 0; i < grp.cnt; ++i) {
      const __m256i w = block_codes<kQ4, N>(f, grp, i, lanes, k);
      const __m256i wu = _mm256_sign_epi8(w, w);
      const float dw = f16_at(grp.p.d + 2 * i);
      const int64_t ib = grp.b0 + i;
      for (int c = 0; c < C; ++c) {
        const uint8_t* b = x + c * xrb + ib * 34;
        const __m256i lanes32 = pair_sums(_mm256_maddubs_epi16(wu, _mm256_sign_epi8(load256(b + 2), w)));
        if constexpr (kTail == Tail::kAvx2) {
          const __m256 fl = _mm256_cvtepi32_ps(lanes32);
          acc[c].v8 = _mm256_fmadd_ps(fl, _mm256_mul_ps(_mm256_set1_ps(dw), _mm256_set1_ps(f16_at(b))), acc[c].v8);
        } else {
          acc[c].f[ib % 4] = (float)hsum256_epi32(lanes32);
          acc[c].s[ib % 4] = dw * f16_at(b);
          if (ib % 4 == 3 || ib == nb - 1) {  // the 4 blocks' fmas, each into its chain (missing ones keep it)
            const __m128 fm = _mm_fmadd_ps(_mm_load_ps(acc[c].f), _mm_load_ps(acc[c].s), acc[c].chains);
            const int have = (int)(ib % 4) + 1;
            const __m128 keep = _mm_castsi128_ps(_mm_cmpgt_epi32(_mm_set1_epi32(have), _mm_setr_epi32(0, 1, 2, 3)));
            acc[c].chains = _mm_blendv_ps(acc[c].chains, fm, keep);
          }
        }
      }
    }
  }
  for (int c = 0; c < C; ++c) {
    if constexpr (kTail == Tail::kAvx2) {
      out[c * ldo] = hsum256(acc[c].v8);
    } else {
      const __m128 s2 = _mm_add_ps(acc[c].chains, _mm_movehl_ps(acc[c].chains, acc[c].chains));
      out[c * ldo] = _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
    }
  }
}

template <bool kQ4, int N, Tail kTail>
void walk(const SparseTypeInfo& f, int64_t n, const uint8_t* w, size_t wrb, int64_t r0, int64_t r1, const uint8_t* x,
          size_t xrb, int64_t T, float* y, int64_t ldy) {
  static const Consts k = make_consts<N>();
  const int64_t nb = n / 32;
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t c0 = 0; c0 < T; c0 += 4) {
      const uint8_t* xc = x + c0 * xrb;
      float* out = y + c0 * ldy + r;
      switch (std::min<int64_t>(4, T - c0)) {
        case 1: walk_row<kQ4, N, 1, kTail>(f, nb, w + r * wrb, xc, xrb, out, ldy, k); break;
        case 2: walk_row<kQ4, N, 2, kTail>(f, nb, w + r * wrb, xc, xrb, out, ldy, k); break;
        case 3: walk_row<kQ4, N, 3, kTail>(f, nb, w + r * wrb, xc, xrb, out, ldy, k); break;
        default: walk_row<kQ4, N, 4, kTail>(f, nb, w + r * wrb, xc, xrb, out, ldy, k); break;
      }
    }
  }
}

template <Tail kTail>
SparseWalkFn walk_for(const SparseTypeInfo& f) {
  if (!f.kept_lanes) return nullptr;  // 1:4 and 2:4 over Q8_0 / Q4_0
  if (f.base == DType::Q8_0) return f.n == 2 ? &walk<false, 2, kTail> : &walk<false, 1, kTail>;
  if (f.base == DType::Q4_0) return f.n == 2 ? &walk<true, 2, kTail> : &walk<true, 1, kTail>;
  return nullptr;
}

}  // namespace

SparseWalkFn sparse_walk_avx2(const SparseTypeInfo& f) { return walk_for<Tail::kAvx2>(f); }

SparseWalkFn sparse_walk_avx512_novbmi(const SparseTypeInfo& f) { return walk_for<Tail::kAvx512>(f); }

}  // namespace frugal
