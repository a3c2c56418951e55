// AVX-512 expansion of N:M sparse blocks into dense base blocks (scalar twin: sparse_expand_row in
// tensor/sparse_nm.cpp). vpexpandb / vpexpandw (AVX512_VBMI2) place the K kept values at the mask's
// set bits in one instruction, reading exactly the kept bytes; dropped elements get 0 (Q4_0: code 8).
// Compiled with the AVX-512 F/BW/VL/DQ flags; the VBMI2 functions carry their own target attribute
// and are only handed out when the CPU has VBMI2.
// GCC 12 reports false -Wmaybe-uninitialized inside the AVX-512 intrinsic headers (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <immintrin.h>

#include <cstring>

#include "backend/sparse_quant.h"

namespace frugal {

namespace {

#define FRUGAL_VBMI2 __attribute__((target("avx512vbmi2")))

inline uint32_t ld_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

FRUGAL_VBMI2 void expand_q8_0(const SparseTypeInfo& f, const SparseGroup& grp, uint8_t* d) {
  const SparsePlanes& p = grp.p;
  for (int64_t b = 0; b < grp.cnt; ++b, d += 34) {
    // Register-form vpexpandb (the memory form is microcoded on AMD Zen 4); K = 16 / 8 / 4 bytes.
    uint8_t tmp[64];
    const uint8_t* kv = sparse_block_kept(f, grp, b, tmp);
    __m128i kept;
    if (f.kept == 16) {
      kept = _mm_loadu_si128((const __m128i*)kv);
    } else if (f.kept == 8) {
      kept = _mm_loadl_epi64((const __m128i*)kv);
    } else {
      kept = _mm_cvtsi32_si128((int)ld_u32(kv));
    }
    const __m256i v = _mm256_maskz_expand_epi8((__mmask32)sparse_mask(f, p.mask, b), _mm256_castsi128_si256(kept));
    std::memcpy(d, p.d + 2 * b, 2);
    _mm256_storeu_si256((__m256i*)(d + 2), v);
  }
}

// K kept 4-bit codes (K/2 bytes: low nibbles kept 0..K/2-1, high nibbles the rest) as K bytes.
template <int K>
FRUGAL_VBMI2 inline __m128i q4_codes(const uint8_t* kv) {
  const __m128i raw = _mm_maskz_loadu_epi8((__mmask16)((1u << (K / 2)) - 1), kv);
  const __m128i m4 = _mm_set1_epi8(0x0F);
  const __m128i lo = _mm_and_si128(raw, m4);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(raw, 4), m4);
  return _mm_or_si128(lo, _mm_bslli_si128(hi, K / 2));
}

template <int K>
FRUGAL_VBMI2 void expand_q4_0(const SparseTypeInfo& f, const SparseGroup& grp, uint8_t* d) {
  const SparsePlanes& p = grp.p;
  const __m256i eight = _mm256_set1_epi8(8);
  for (int64_t b = 0; b < grp.cnt; ++b, d += 18) {
    uint8_t tmp[64];
    const __m256i codes = _mm256_mask_expand_epi8(eight, (__mmask32)sparse_mask(f, p.mask, b),
                                                  _mm256_castsi128_si256(q4_codes<K>(sparse_block_kept(f, grp, b, tmp))));
    const __m128i qs = _mm_or_si128(_mm256_castsi256_si128(codes), _mm_slli_epi16(_mm256_extracti128_si256(codes, 1), 4));
    std::memcpy(d, p.d + 2 * b, 2);
    _mm_storeu_si128((__m128i*)(d + 2), qs);
  }
}

FRUGAL_VBMI2 void expand_f16(const SparseTypeInfo& f, const SparsePlanes& p, uint8_t* d, int64_t nb) {
  // (F16 kept planes are always block by block: kept_lanes is false.)
  // Register form and plain loads of the K kept halves (the memory form with its masked load ran 1.4x
  // slower on Zen 4). The decode path does not come here on VBMI2 CPUs (sparse_f16_avx512.cpp).
  for (int64_t b = 0; b < nb; ++b, d += 64) {
    const uint8_t* kv = p.kept + (size_t)b * f.kept_bytes;
    __m256i v;
    if (f.kept == 16) {
      v = _mm256_loadu_si256((const __m256i*)kv);
    } else if (f.kept == 8) {
      v = _mm256_castsi128_si256(_mm_loadu_si128((const __m128i*)kv));
    } else {
      v = _mm256_castsi128_si256(_mm_loadl_epi64((const __m128i*)kv));
    }
    _mm512_storeu_si512(d, _mm512_maskz_expand_epi16((__mmask32)sparse_mask(f, p.mask, b), _mm512_castsi256_si512(v)));
  }
}

// One planar group (tensor/sparse_nm.h) into grp.cnt dense blocks at d.
void expand_group(const SparseTypeInfo& f, const SparseGroup& grp, uint8_t* d) {
  switch (f.base) {
    case DType::Q8_0: expand_q8_0(f, grp, d); return;
    case DType::F16: expand_f16(f, grp.p, d, grp.cnt); return;
    default: break;
  }
  switch (f.kept) {
    case 4: expand_q4_0<4>(f, grp, d); return;
    case 8: expand_q4_0<8>(f, grp, d); return;
    case 16: expand_q4_0<16>(f, grp, d); return;
    default: sparse_expand_row(f, grp.p.d, d, grp.cnt * kSparseBlock); return;
  }
}

void expand(const SparseTypeInfo& f, const void* src, void* dst, int64_t n) {
  const int64_t nb = n / kSparseBlock;
  auto* d = static_cast<uint8_t*>(dst);
  for (int64_t g = 0; g < sparse_group_count(nb); ++g) {
    const SparseGroup grp = sparse_group(f, src, nb, g);
    expand_group(f, grp, d + grp.b0 * f.dense_block_bytes);
  }
}

}  // namespace

SparseExpandFn sparse_expander_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512vbmi2") ? &expand : nullptr;
}

}  // namespace frugal
