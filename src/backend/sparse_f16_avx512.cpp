// AVX-512 decode kernel for N:M sparse F16 weights (T < kSparseWalkMaxT activation columns): a row walk
// that expands each block's kept halves into registers (register-form vpexpandw with the block's keep
// mask, AVX512_VBMI2), widens them and multiply-adds against the activations converted to f32 once.
//
// Arithmetic contract: exactly the dense AVX-512 F16 kernel's (quant_avx512.cpp FloatKernel): one
// accumulator per (row, column), element k in lane k mod 16, 16-element steps in order, then hsum512's
// fixed tree. A dropped element is the half +0, as in the expanded dense row, so each (row, token) value is
// bit-identical to the dense kernels on the expanded weights, which the sparse gemm uses for T >= 8
// (sparse_quant.cpp). Tested in sparse_quant_test.cpp (sparse == dense bit for bit for every T).
//
// Before this kernel, F16 sparse decode expanded through a buffer with the memory form of the 512-bit
// vpexpandw and ran at 0.4x the dense F16 model (kernel level 2.5 ms vs 0.85 ms; plain loads + register
// form: 1.8 ms; this walk with two 256-bit expands: 1.3 ms, 1 thread, 2048 x 5632).
// GCC 12 reports false -Wmaybe-uninitialized inside the AVX-512 intrinsic headers (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
// vpexpandw needs VBMI2; sparse_walk_avx512() hands this kernel out only when the CPU has it.
#pragma GCC target("avx512vbmi2")

#include <vector>

#include "backend/quant_avx512_util.h"
#include "backend/quant_gemm.h"
#include "backend/sparse_quant.h"
#include "backend/sparse_walk_util.h"

namespace frugal {

namespace {

// K/2 kept halves (K = 4, 8 or 16) in the low lanes, reading exactly K bytes with a plain load.
template <int K>
__attribute__((always_inline)) inline __m256i load_half_kept(const uint8_t* p) {
  if constexpr (K == 16) return _mm256_castsi128_si256(_mm_loadu_si128((const __m128i*)p));
  if constexpr (K == 8) return _mm256_castsi128_si256(_mm_loadl_epi64((const __m128i*)p));
  if constexpr (K == 4) return _mm256_castsi128_si256(_mm_cvtsi32_si128((int)ld_u32(p)));
}

// Columns [0, C) of one row; xf: column c's K activations as f32 at xf + c * K.
template <int K, int C>
void walk_row(const SparseTypeInfo& f, const uint8_t* row, int64_t nb, const float* xf, int64_t n, float* out,
              int64_t ldo) {
  __m512 acc[C];
  unroll<C>([&](auto c) { acc[c] = _mm512_setzero_ps(); });
  for (int64_t b = 0; b < nb; ++b) {
    // Each half of a block holds whole groups (M <= 16), hence K/2 kept values: two 256-bit vpexpandw
    // (the 512-bit form costs about four times one 256-bit form on Zen 4).
    const SparseGroup grp = sparse_group(f, row, nb, b / kSparseGroupBlocks);
    const uint32_t m = sparse_mask(f, grp.p.mask, b - grp.b0);
    const uint8_t* kv = grp.p.kept + (b - grp.b0) * 2 * K;
    const __m512 w0 = _mm512_cvtph_ps(_mm256_maskz_expand_epi16((__mmask16)m, load_half_kept<K>(kv)));
    const __m512 w1 = _mm512_cvtph_ps(_mm256_maskz_expand_epi16((__mmask16)(m >> 16), load_half_kept<K>(kv + K)));
    unroll<C>([&](auto c) {
      const float* x = xf + c * n + b * 32;
      acc[c] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x), acc[c]);
      acc[c] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + 16), acc[c]);
    });
  }
  unroll<C>([&](auto c) { out[c * ldo] = hsum512(acc[c]); });
}

template <int K>
void walk(const SparseTypeInfo& f, int64_t n, const uint8_t* w, size_t wrb, int64_t r0, int64_t r1, const uint8_t* x,
          size_t xrb, int64_t T, float* y, int64_t ldy) {
  thread_local std::vector<uint8_t> xbuf;
  const int64_t nb = n / 32;
  auto* xf = reinterpret_cast<float*>(grow(xbuf, (size_t)(T * n) * sizeof(float)));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < n; i += 16)
      _mm512_storeu_ps(xf + t * n + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(x + t * xrb + 2 * i))));
  for_rows_prefetched(w, wrb, (size_t)nb * f.block_bytes, r0, r1, [&](const uint8_t* row, int64_t r) {
    for_column_groups(T, [&](auto cols, int64_t c0) {
      walk_row<K, decltype(cols)::value>(f, row, nb, xf + c0 * n, n, y + c0 * ldy + r, ldy);
    });
  });
}

}  // namespace

SparseWalkFn sparse_f16_walk_avx512(const SparseTypeInfo& f) {
  __builtin_cpu_init();
  if (f.base != DType::F16 || !__builtin_cpu_supports("avx512vbmi2")) return nullptr;
  switch (f.kept) {
    case 4: return &walk<4>;
    case 8: return &walk<8>;
    case 16: return &walk<16>;
    default: return nullptr;
  }
}

}  // namespace frugal
